// Tensors in and out of .npz members (data/npz.h).
#pragma once

#include <string>

#include <torch/types.h>

#include "data/npz.h"

namespace ocm::eval {

// A contiguous CPU copy of `tensor` as a .npy array: uint8 as "|u1", float32 "<f4", float64 "<f8",
// int64 "<i8" (the dtypes numpy gives these by default).
data::NpyArray npy_of(const torch::Tensor& tensor);

// A float64 tensor of a float32 or float64 member; UserError naming `where` for any other dtype.
torch::Tensor float64_tensor_of(const data::NpyArray& array, const std::string& where);

}  // namespace ocm::eval
