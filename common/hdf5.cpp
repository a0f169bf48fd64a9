#include "common/hdf5.h"

#include <algorithm>
#include <vector>

namespace ocm {

void Hid::reset() {
  if (id_ < 0)
    return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
  id_ = H5I_INVALID_HID;
}

void silence_hdf5_errors() {
  // The automatic error printing is a per-thread setting in thread-safe HDF5 builds.
  thread_local bool silenced = false;
  if (!silenced)
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

void write_attribute(hid_t object, const char* name, int64_t value) {
  Hid space(H5Screate(H5S_SCALAR));
  Hid attribute(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value);
}

void write_attribute(hid_t object, const char* name, const std::string& value) {
  Hid space(H5Screate(H5S_SCALAR));
  Hid type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<size_t>(1, value.size()));
  Hid attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  H5Awrite(attribute.get(), type.get(), value.empty() ? "" : value.c_str());
}

bool read_attribute(hid_t object, const char* name, int64_t* value) {
  if (H5Aexists(object, name) <= 0)
    return false;
  Hid attribute(H5Aopen(object, name, H5P_DEFAULT));
  return H5Aread(attribute.get(), H5T_NATIVE_INT64, value) >= 0;
}

bool read_attribute(hid_t object, const char* name, std::string* value) {
  if (H5Aexists(object, name) <= 0)
    return false;
  Hid attribute(H5Aopen(object, name, H5P_DEFAULT));
  Hid type(H5Aget_type(attribute.get()));
  if (H5Tget_class(type.get()) != H5T_STRING)
    return false;
  std::vector<char> buffer(H5Tget_size(type.get()) + 1, '\0');
  Hid memory(H5Tcopy(H5T_C_S1));
  H5Tset_size(memory.get(), buffer.size());
  if (H5Aread(attribute.get(), memory.get(), buffer.data()) < 0)
    return false;
  *value = buffer.data();
  return true;
}

}  // namespace ocm
