// The .safetensors reader (checkpoints/safetensors.h) on files this test writes byte by byte.
#include <cstring>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "checkpoints/safetensors.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::checkpoints {
namespace {

// The format, written independently of the reader: N as 8 little-endian bytes, N bytes of JSON
// header, then `data`.
void write_file(const std::string& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8)
    bytes[i] = static_cast<char>(n & 0xff);
  std::ofstream(path, std::ios::binary) << bytes << header << data;
}

template <typename T>
std::string raw(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

TEST(Safetensors, EveryDtypeShapeAndTheMetadataRoundTrip) {
  const test::TempDir dir("ocm-safetensors");
  // bf16 1.0 is 0x3f80 and -2.0 is 0xc000; f16 0.5 is 0x3800.
  const std::string data = raw<float>({1, 2, 3, 4, 5, 6}) + raw<double>({-1.5}) +
                           raw<int64_t>({7, -8}) + raw<uint16_t>({0x3f80, 0xc000}) +
                           raw<uint16_t>({0x3800}) + raw<uint8_t>({200});
  write_file(dir.join("m.safetensors"),
             R"({"__metadata__": {"format": "pt"},
                 "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                 "s": {"dtype": "F64", "shape": [], "data_offsets": [24, 32]},
                 "i": {"dtype": "I64", "shape": [2], "data_offsets": [32, 48]},
                 "b": {"dtype": "BF16", "shape": [2], "data_offsets": [48, 52]},
                 "h": {"dtype": "F16", "shape": [1, 1], "data_offsets": [52, 54]},
                 "u": {"dtype": "U8", "shape": [1], "data_offsets": [54, 55]},
                 "empty": {"dtype": "F32", "shape": [0, 4], "data_offsets": [55, 55]}})",
             data);
  const SafetensorsFile file = read_safetensors(dir.join("m.safetensors"));
  EXPECT_EQ(file.metadata.at("format"), "pt");
  ASSERT_EQ(file.tensors.size(), 7u);
  EXPECT_TRUE(
      torch::equal(file.tensors.at("w"), torch::arange(1, 7, torch::kFloat32).reshape({2, 3})));
  EXPECT_EQ(file.tensors.at("s").dim(), 0);
  EXPECT_EQ(file.tensors.at("s").item<double>(), -1.5);
  EXPECT_TRUE(torch::equal(file.tensors.at("i"), torch::tensor({7, -8}, torch::kInt64)));
  EXPECT_EQ(file.tensors.at("b").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(file.tensors.at("b").to(torch::kFloat32), torch::tensor({1.f, -2.f})));
  EXPECT_EQ(file.tensors.at("h").scalar_type(), torch::kHalf);
  EXPECT_EQ(file.tensors.at("h").to(torch::kFloat32).item<float>(), 0.5f);
  EXPECT_EQ(file.tensors.at("u").item<uint8_t>(), 200);
  EXPECT_EQ(file.tensors.at("empty").sizes(), (std::vector<int64_t>{0, 4}));
}

struct BadFile {
  const char* name;
  std::string header;
  std::string data;
  std::vector<std::string> message;
};

void PrintTo(const BadFile& file, std::ostream* out) {
  *out << file.name;
}

class SafetensorsBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(SafetensorsBadFile, IsRefusedNamingTheFileAndWhatIsWrong) {
  const test::TempDir dir("ocm-safetensors-bad");
  const std::string path = dir.join("bad.safetensors");
  write_file(path, GetParam().header, GetParam().data);
  std::vector<std::string> parts = GetParam().message;
  parts.push_back(path);
  test::expect_user_error([&] { read_safetensors(path); }, parts);
}

const std::string kFour = raw<float>({1, 2, 3, 4});

INSTANTIATE_TEST_SUITE_P(
    , SafetensorsBadFile,
    ::testing::Values(
        BadFile{"HeaderNotJson", "{not json", "", {"not JSON"}},
        BadFile{"HeaderNotAnObject", "[1, 2]", "", {"not a JSON object"}},
        BadFile{"UnknownDtype",
                R"({"x": {"dtype": "F8", "shape": [4], "data_offsets": [0, 4]}})",
                raw<uint8_t>({1, 2, 3, 4}),
                {"`x`", "dtype \"F8\""}},
        BadFile{"MissingOffsets",
                R"({"x": {"dtype": "F32", "shape": [4]}})",
                kFour,
                {"`x`", "data_offsets"}},
        BadFile{"NegativeSize",
                R"({"x": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})",
                kFour,
                {"`x`", "shape [-4]"}},
        BadFile{"ShapeAndBytesDisagree",
                R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})",
                kFour,
                {"`x`", "spans 16 bytes", "3 elements of 4 bytes"}},
        BadFile{"OffsetsPastTheData",
                R"({"x": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})",
                kFour,
                {"truncated"}},
        BadFile{"BytesAfterTheLastTensor",
                R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                kFour,
                {"16 bytes of tensor data", "8, what its header describes"}},
        BadFile{"Overlap",
                R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                    "y": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                kFour,
                {"`y`", "starts at byte 8", "byte 12"}},
        BadFile{
            "HugeShape",
            R"({"x": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}})",
            kFour,
            {"`x`", "too large"}},
        BadFile{"BoolThatIsNeitherZeroNorOne",
                R"({"x": {"dtype": "BOOL", "shape": [4], "data_offsets": [0, 4]}})",
                raw<uint8_t>({0, 1, 2, 1}),
                {"`x`", "BOOL byte other than 0 or 1"}},
        BadFile{"MetadataNotStrings",
                R"({"__metadata__": {"epoch": 3}})",
                "",
                {"__metadata__.epoch", "not a string"}}),
    [](const ::testing::TestParamInfo<BadFile>& info) { return std::string(info.param.name); });

TEST(Safetensors, AnEmptyTensorMaySitAtTheOffsetOfTheNextOne) {
  // The format's writer places empty tensors where they fall; "x" sorts after "a" by name.
  const test::TempDir dir("ocm-safetensors-empty");
  write_file(dir.join("e.safetensors"),
             R"({"x": {"dtype": "F64", "shape": [0], "data_offsets": [0, 0]},
                 "a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})",
             raw<uint8_t>({1, 0}));
  const SafetensorsFile file = read_safetensors(dir.join("e.safetensors"));
  EXPECT_EQ(file.tensors.at("x").numel(), 0);
  EXPECT_TRUE(torch::equal(file.tensors.at("a"), torch::tensor({true, false})));
}

TEST(Safetensors, HeaderLongerThanTheFileIsRefusedBeforeAllocating) {
  const test::TempDir dir("ocm-safetensors-long");
  const std::string path = dir.join("long.safetensors");
  std::string bytes(8, '\0');
  bytes[5] = 1;  // N = 2^40
  std::ofstream(path, std::ios::binary) << bytes << "{}";
  test::expect_user_error([&] { read_safetensors(path); },
                          {path, "header of 1099511627776 bytes", "at most 100 MB"});
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "abc";
  test::expect_user_error([&] { read_safetensors(path); }, {path, "shorter than 8 bytes"});
}

}  // namespace
}  // namespace ocm::checkpoints
