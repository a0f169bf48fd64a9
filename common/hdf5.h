#pragma once
// Thin RAII over the HDF5 C API.

#include <hdf5.h>

#include <string>
#include <utility>

namespace ocm {

// Note [verified before HDF5]
// Debian's libhdf5 (1.10) is not hardened against damaged files: fuzzing (fuzz/) found it
// reading past a buffer while looking up an attribute of a crafted file (H5Aexists ->
// H5MM_strdup), asking for petabytes for a metadata cache entry, and losing memory on its error
// paths. So an HDF5 file that ocm reads back is first matched against the SHA-256 recorded when
// ocm wrote it: a checkpoint against its manifest (checkpoints/checkpoint.h), statistics against
// FILE.sha256 (eval/statistics.h). A damaged file is then refused before HDF5 sees it. Dataset
// shards are the exception: hashing every shard at every open would cost a pass over the data,
// so their manifest's hashes are checked by `ocm data verify` instead.

// Owns an HDF5 identifier and closes it with the matching H5*close.
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  Hid(Hid&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hid& operator=(Hid&& other) noexcept {
    reset();
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// HDF5 prints its own error stack unless told not to; we report errors ourselves. Call it on
// every thread before its first HDF5 call.
void silence_hdf5_errors();

// Scalar attributes on a file, group or dataset: int64, and fixed-length strings (h5py reads
// both). A read returns false when the attribute is missing or of another kind.
void write_attribute(hid_t object, const char* name, int64_t value);
void write_attribute(hid_t object, const char* name, const std::string& value);
bool read_attribute(hid_t object, const char* name, int64_t* value);
bool read_attribute(hid_t object, const char* name, std::string* value);

}  // namespace ocm
