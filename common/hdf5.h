#pragma once
// Thin RAII over the HDF5 C API.

#include <hdf5.h>

#include <string>
#include <utility>

namespace ocm {

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
