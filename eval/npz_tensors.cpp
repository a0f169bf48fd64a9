#include "eval/npz_tensors.h"

#include <cstring>

#include <torch/torch.h>

#include "common/error.h"

namespace ocm::eval {

data::NpyArray npy_of(const torch::Tensor& tensor) {
  const torch::Tensor data = tensor.contiguous().cpu();
  std::string descr;
  switch (data.scalar_type()) {
    case torch::kUInt8:
      descr = "|u1";
      break;
    case torch::kFloat32:
      descr = "<f4";
      break;
    case torch::kFloat64:
      descr = "<f8";
      break;
    case torch::kInt64:
      descr = "<i8";
      break;
    default:
      throw std::logic_error(std::string("npy_of: no .npy dtype for ") +
                             c10::toString(data.scalar_type()));
  }
  data::NpyArray array{descr, data.sizes().vec(), std::string(data.nbytes(), '\0')};
  if (data.nbytes() > 0)
    std::memcpy(array.bytes.data(), data.data_ptr(), data.nbytes());
  return array;
}

torch::Tensor float64_tensor_of(const data::NpyArray& array, const std::string& where) {
  const std::string type = array.descr.substr(array.descr[0] == '<' || array.descr[0] == '=');
  if (type != "f4" && type != "f8")
    throw UserError(where, "holds dtype '" + array.descr + "'",
                    "float64 or float32 ('<f8', '<f4')");
  const torch::ScalarType dtype = type == "f8" ? torch::kFloat64 : torch::kFloat32;
  torch::Tensor out = torch::empty(array.shape, dtype);
  if (out.nbytes() > 0)
    std::memcpy(out.data_ptr(), array.bytes.data(), out.nbytes());
  return out.to(torch::kFloat64);
}

}  // namespace ocm::eval
