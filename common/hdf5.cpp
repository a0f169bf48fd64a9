#include "common/hdf5.h"

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

}  // namespace ocm
