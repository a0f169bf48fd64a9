#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "data/converters.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::data {
namespace {

const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

using test::expect_user_error;

// The whole decompressed content of a gzip file, read independently of the converter.
std::vector<uint8_t> gunzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  std::vector<uint8_t> out;
  uint8_t buffer[65536];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0)
    out.insert(out.end(), buffer, buffer + n);
  gzclose(file);
  return out;
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

std::vector<uint8_t> idx(uint8_t rank, const std::vector<uint32_t>& dims,
                         const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out = {0, 0, 8, rank};
  for (const uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0})
      out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A tiny MNIST-style source: n_train and n_test images of 4x3 pixels.
void write_idx_source(const std::string& dir, int n_train, int n_test) {
  files::create_directories(dir);
  for (const auto& [prefix, n] :
       {std::pair<std::string, int>{"train", n_train}, {"t10k", n_test}}) {
    std::vector<uint8_t> pixels(static_cast<size_t>(n) * 12), labels(n);
    std::iota(pixels.begin(), pixels.end(), static_cast<uint8_t>(prefix.size()));
    for (int i = 0; i < n; ++i)
      labels[i] = static_cast<uint8_t>(i % 10);
    write_gzip(dir + "/" + prefix + "-images-idx3-ubyte.gz",
               idx(3, {static_cast<uint32_t>(n), 4, 3}, pixels));
    write_gzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz",
               idx(1, {static_cast<uint32_t>(n)}, labels));
  }
}

TEST(FashionMnist, ShardsHoldTheIdxBytesExactly) {
  if (!files::exists(kFashionMnist))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (launch/setup.sh installs it)";
  test::TempDir tmp("ocm-data-test");
  const std::string out = tmp.join("fashion");
  convert_idx("fashion-mnist", kFashionMnist, out,
              ShardLayout{8 << 20});  // several shards per split
  ASSERT_EQ(verify_dataset(out), 70000);
  const Dataset dataset(out);
  EXPECT_GT(dataset.manifest().split("train", out).shards.size(), 1u);
  for (const auto& [split, prefix] :
       {std::pair<std::string, std::string>{"train", "train"}, {"test", "t10k"}}) {
    const std::vector<uint8_t> images =
        gunzip(std::string(kFashionMnist) + "/" + prefix + "-images-idx3-ubyte.gz");
    const std::vector<uint8_t> labels =
        gunzip(std::string(kFashionMnist) + "/" + prefix + "-labels-idx1-ubyte.gz");
    const int64_t n = dataset.size(split);
    ASSERT_EQ(static_cast<size_t>(n * 784 + 16), images.size());
    std::vector<int64_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    std::vector<uint8_t> read(n * 784);
    std::vector<int64_t> read_labels(n);
    dataset.read(split, all, read.data(), read_labels.data());
    EXPECT_TRUE(std::equal(read.begin(), read.end(), images.begin() + 16)) << split;
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(read_labels[i], labels[8 + i]) << split << " " << i;
  }
}

// Converting an MNIST-style source that is bad in one way fails naming the file and leaves
// neither the output nor a partial one.
class IdxConverterBadSource : public ::testing::Test {
 protected:
  void expect_failure(const std::string& source, const std::string& part) const {
    expect_user_error([&] { convert_idx("mnist", source, out, ShardLayout{1 << 20}); }, {part});
    EXPECT_FALSE(files::exists(out));
    for (const auto& entry : files::list_directory(tmp.path())) {
      EXPECT_EQ(entry.name.find(".partial"), std::string::npos) << entry.name;
    }
  }

  test::TempDir tmp{"ocm-data-test"};
  const std::string out = tmp.join("out");
};

TEST_F(IdxConverterBadSource, ExistingOutputIsRefused) {
  write_idx_source(tmp.join("good"), 5, 3);
  convert_idx("mnist", tmp.join("good"), out, ShardLayout{1 << 20});
  EXPECT_EQ(verify_dataset(out), 8);
  expect_user_error([&] { convert_idx("mnist", tmp.join("good"), out, ShardLayout{1 << 20}); },
                    {"already exists"});
}

TEST_F(IdxConverterBadSource, WrongMagicNumber) {
  write_idx_source(tmp.join("magic"), 5, 3);
  write_gzip(tmp.join("magic/train-images-idx3-ubyte.gz"), idx(1, {5}, std::vector<uint8_t>(5)));
  expect_failure(tmp.join("magic"), "train-images-idx3-ubyte.gz");
}

TEST_F(IdxConverterBadSource, FewerLabelsThanImages) {
  write_idx_source(tmp.join("count"), 5, 3);
  write_gzip(tmp.join("count/t10k-labels-idx1-ubyte.gz"), idx(1, {2}, {1, 2}));
  expect_failure(tmp.join("count"), "t10k-labels-idx1-ubyte.gz: has 2 labels");
}

TEST_F(IdxConverterBadSource, FewerPixelsThanTheHeaderSays) {
  write_idx_source(tmp.join("short"), 5, 3);
  std::vector<uint8_t> header_only = idx(3, {5, 4, 3}, std::vector<uint8_t>(10));
  write_gzip(tmp.join("short/train-images-idx3-ubyte.gz"), header_only);
  expect_failure(tmp.join("short"), "ends early");
}

TEST_F(IdxConverterBadSource, TruncatedGzipFile) {
  write_idx_source(tmp.join("truncated"), 5, 3);
  const std::string gz = tmp.join("truncated/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(::truncate(gz.c_str(), files::file_size(gz) / 2), 0);
  expect_failure(tmp.join("truncated"), "t10k-images-idx3-ubyte.gz");
}

TEST_F(IdxConverterBadSource, AbsentSourceFolder) {
  expect_failure(tmp.join("absent"), "absent");
}

// A ustar member header for `name` of `size` bytes.
std::vector<uint8_t> tar_header(const std::string& name, size_t size) {
  std::vector<uint8_t> header(512, 0);
  std::memcpy(header.data(), name.data(), name.size());
  std::snprintf(reinterpret_cast<char*>(header.data()) + 100, 8, "%07o", 0644);
  std::snprintf(reinterpret_cast<char*>(header.data()) + 124, 12, "%011zo", size);
  header[156] = '0';
  std::memcpy(header.data() + 257, "ustar", 5);
  std::memset(header.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (const uint8_t b : header)
    sum += b;
  std::snprintf(reinterpret_cast<char*>(header.data()) + 148, 8, "%06o", sum);
  return header;
}

// CIFAR batches with `per_batch` records each; record r of batch b has label (b + r) % 10 and
// pixel values derived from (b, r, channel, position).
std::map<std::string, std::vector<uint8_t>> cifar_batches(int per_batch) {
  std::map<std::string, std::vector<uint8_t>> batches;
  const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (int b = 0; b < 6; ++b) {
    std::vector<uint8_t> bytes;
    for (int r = 0; r < per_batch; ++r) {
      bytes.push_back(static_cast<uint8_t>((b + r) % 10));
      for (int c = 0; c < 3; ++c) {
        for (int p = 0; p < 1024; ++p)
          bytes.push_back(static_cast<uint8_t>(b * 31 + r * 7 + c * 50 + p));
      }
    }
    batches[names[b]] = bytes;
  }
  return batches;
}

void write_cifar_tarball(const std::string& path,
                         const std::map<std::string, std::vector<uint8_t>>& batches) {
  std::vector<uint8_t> tar;
  auto add = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    const auto header = tar_header(name, bytes.size());
    tar.insert(tar.end(), header.begin(), header.end());
    tar.insert(tar.end(), bytes.begin(), bytes.end());
    tar.resize((tar.size() + 511) / 512 * 512, 0);
  };
  add("cifar-10-batches-bin/batches.meta.txt", {'a', '\n'});
  for (const auto& [name, bytes] : batches)
    add("cifar-10-batches-bin/" + name, bytes);
  tar.resize(tar.size() + 1024, 0);
  write_gzip(path, tar);
}

TEST(Cifar10Converter, TarballAndFolderGiveTheRecordsAsHwcImages) {
  test::TempDir tmp("ocm-data-test");
  const auto batches = cifar_batches(3);
  write_cifar_tarball(tmp.join("cifar-10-binary.tar.gz"), batches);
  convert_cifar10(tmp.join("cifar-10-binary.tar.gz"), tmp.join("from-tar"), ShardLayout{});
  files::create_directories(tmp.join("extracted/cifar-10-batches-bin"));
  for (const auto& [name, bytes] : batches) {
    std::ofstream(tmp.join("extracted/cifar-10-batches-bin/" + name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  convert_cifar10(tmp.join("extracted"), tmp.join("from-folder"), ShardLayout{});
  for (const std::string& dir : {tmp.join("from-tar"), tmp.join("from-folder")}) {
    EXPECT_EQ(verify_dataset(dir), 18);
    const Dataset dataset(dir);
    EXPECT_EQ(dataset.size("train"), 15);
    EXPECT_EQ(dataset.size("test"), 3);
    // Train element 4 is record 1 of data_batch_2 (b = 1, r = 1).
    std::vector<uint8_t> image(3072);
    int64_t label = -1;
    dataset.read("train", {4}, image.data(), &label);
    EXPECT_EQ(label, 2);
    const std::vector<uint8_t>& record = batches.at("data_batch_2.bin");
    for (int p = 0; p < 1024; ++p) {
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(image[p * 3 + c], record[3073 + 1 + c * 1024 + p]) << p << " " << c;
    }
  }
}

TEST(Cifar10Converter, BatchOfTheWrongSizeIsNamedAndNothingIsWritten) {
  test::TempDir tmp("ocm-data-test");
  auto bad = cifar_batches(3);
  bad["data_batch_3.bin"].pop_back();
  write_cifar_tarball(tmp.join("bad.tar.gz"), bad);
  expect_user_error(
      [&] { convert_cifar10(tmp.join("bad.tar.gz"), tmp.join("bad"), ShardLayout{}); },
      {"data_batch_3.bin", "3073"});
  EXPECT_FALSE(files::exists(tmp.join("bad")));
}

TEST(Cifar10Converter, MissingBatchIsNamed) {
  test::TempDir tmp("ocm-data-test");
  auto missing = cifar_batches(3);
  missing.erase("test_batch.bin");
  write_cifar_tarball(tmp.join("missing.tar.gz"), missing);
  expect_user_error(
      [&] { convert_cifar10(tmp.join("missing.tar.gz"), tmp.join("bad"), ShardLayout{}); },
      {"test_batch.bin"});
}

TEST(Cifar10Converter, TruncatedTarballIsReportedAndNothingIsWritten) {
  test::TempDir tmp("ocm-data-test");
  const std::string truncated = tmp.join("truncated.tar.gz");
  write_cifar_tarball(truncated, cifar_batches(3));
  ASSERT_EQ(::truncate(truncated.c_str(), files::file_size(truncated) / 3), 0);
  expect_user_error([&] { convert_cifar10(truncated, tmp.join("bad"), ShardLayout{}); },
                    {"truncated"});
  EXPECT_FALSE(files::exists(tmp.join("bad")));
}

// An 8x6 RGB image whose red channel is 10 * x, green is `green`, blue is the class index.
void write_test_png(const std::string& path, uint8_t green, uint8_t blue) {
  std::vector<uint8_t> pixels(8 * 6 * 3);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      pixels[(y * 8 + x) * 3 + 0] = static_cast<uint8_t>(10 * x);
      pixels[(y * 8 + x) * 3 + 1] = green;
      pixels[(y * 8 + x) * 3 + 2] = blue;
    }
  }
  ASSERT_NE(stbi_write_png(path.c_str(), 8, 6, 3, pixels.data(), 8 * 3), 0);
}

// An image folder in `src`: splits train (3 images per class) and val (1), classes cat and dog,
// plus a broken .jpg and a file that is no image.
void write_image_folder(const std::string& src) {
  for (const std::string split : {"train", "val"}) {
    for (const std::string cls : {"cat", "dog"}) {
      files::create_directories(files::join(src, split + "/" + cls));
      for (int i = 0; i < (split == "train" ? 3 : 1); ++i) {
        write_test_png(files::join(src, split + "/" + cls + "/" + std::to_string(i) + ".png"),
                       static_cast<uint8_t>(100 + i), cls == "cat" ? 0 : 1);
      }
    }
  }
  std::ofstream(files::join(src, "train/cat/broken.jpg")) << "not a jpeg";
  std::ofstream(files::join(src, "train/dog/notes.txt")) << "ignored: not an image name";
}

TEST(FolderConverter, CropsResamplesLabelsBySubfolderAndSkipsUnreadableFiles) {
  test::TempDir tmp("ocm-data-test");
  write_image_folder(tmp.join("src"));
  convert_folder(tmp.join("src"), tmp.join("out"), 3, ShardLayout{});
  ASSERT_EQ(verify_dataset(tmp.join("out")), 8);
  const Dataset dataset(tmp.join("out"));
  EXPECT_EQ(dataset.manifest().num_classes, 2);
  EXPECT_EQ(dataset.size("train"), 6);  // broken.jpg skipped
  EXPECT_EQ(dataset.size("val"), 2);
  std::vector<uint8_t> images(6 * 27);
  std::vector<int64_t> labels(6);
  dataset.read("train", {0, 1, 2, 3, 4, 5}, images.data(), labels.data());
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  for (int i = 0; i < 6; ++i) {
    // Centre crop keeps columns 1..6 (red 10..60); area resampling 6 -> 3 averages pairs.
    for (int y = 0; y < 3; ++y) {
      const uint8_t* row = images.data() + i * 27 + y * 9;
      EXPECT_EQ(row[0], 15);
      EXPECT_EQ(row[3], 35);
      EXPECT_EQ(row[6], 55);
      EXPECT_EQ(row[1], 100 + i % 3);
      EXPECT_EQ(row[2], labels[i]);
    }
  }
}

TEST(FolderConverter, FolderWithoutImagesIsRefusedAndNothingIsWritten) {
  test::TempDir tmp("ocm-data-test");
  files::create_directories(tmp.join("empty/a"));
  expect_user_error([&] { convert_folder(tmp.join("empty"), tmp.join("out2"), 3, ShardLayout{}); },
                    {"no .jpg"});
  EXPECT_FALSE(files::exists(tmp.join("out2")));
}

TEST(FolderConverter, ZeroResolutionIsRefusedAndNothingIsWritten) {
  test::TempDir tmp("ocm-data-test");
  write_image_folder(tmp.join("src"));
  expect_user_error([&] { convert_folder(tmp.join("src"), tmp.join("out3"), 0, ShardLayout{}); },
                    {"--resolution"});
  EXPECT_FALSE(files::exists(tmp.join("out3")));
}

// A version-1 .npy file with the given header dictionary and raw data.
void write_npy(const std::string& path, const std::string& dict, const void* data, size_t bytes) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t length = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&length), 2);
  out << header;
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}

TEST(ArraysConverter, NpyAndHdf5ArraysBecomeFloat32Splits) {
  test::TempDir tmp("ocm-data-test");
  std::vector<double> values(7 * 2);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = 0.25 * static_cast<double>(i) - 1;
  write_npy(tmp.join("points.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (7, 2), }",
            values.data(), values.size() * 8);
  convert_arrays(tmp.join("points.npy"), tmp.join("from-npy"), ShardLayout{});
  const Dataset npy(tmp.join("from-npy"));
  EXPECT_EQ(npy.manifest().element_shape, (std::vector<int64_t>{2}));
  std::vector<float> row(2);
  npy.read("train", {5}, row.data(), nullptr);
  EXPECT_EQ(row[0], 1.5f);
  EXPECT_EQ(row[1], 1.75f);

  {
    const hid_t file =
        H5Fcreate((tmp.join("latents.h5")).c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    for (const auto& [name, n] : {std::pair<const char*, hsize_t>{"train", 5}, {"test", 3}}) {
      const hsize_t dims[3] = {n, 2, 2};
      std::vector<float> data(n * 4);
      std::iota(data.begin(), data.end(), name[1] == 'r' ? 0.0f : 100.0f);
      const hid_t space = H5Screate_simple(3, dims, nullptr);
      const hid_t dataset =
          H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
      H5Dclose(dataset);
      H5Sclose(space);
    }
    H5Fclose(file);
  }
  convert_arrays(tmp.join("latents.h5"), tmp.join("from-h5"), ShardLayout{});
  EXPECT_EQ(verify_dataset(tmp.join("from-h5")), 8);
  const Dataset h5(tmp.join("from-h5"));
  std::vector<float> latent(4);
  h5.read("test", {2}, latent.data(), nullptr);
  EXPECT_EQ(latent, (std::vector<float>{108, 109, 110, 111}));
}

// An arrays source that convert_arrays refuses: `write` makes it as `file`, and the message says
// `part`.
struct BadArrays {
  std::string name;
  std::string file;
  std::function<void(const std::string& path)> write;
  std::string part;
};
void PrintTo(const BadArrays& bad, std::ostream* out) {
  *out << bad.name;
}

class ArraysConverterBadSource : public ::testing::TestWithParam<BadArrays> {};

TEST_P(ArraysConverterBadSource, IsRefusedNamingWhyAndNothingIsWritten) {
  test::TempDir tmp("ocm-data-test");
  const std::string source = tmp.join(GetParam().file);
  GetParam().write(source);
  expect_user_error([&] { convert_arrays(source, tmp.join("x"), ShardLayout{}); },
                    {GetParam().part});
  EXPECT_FALSE(files::exists(tmp.join("x")));
}

const float kThree[3] = {1, 2, 3};
const float kWithNan[3] = {1, std::nanf(""), 3};

INSTANTIATE_TEST_SUITE_P(
    , ArraysConverterBadSource,
    ::testing::Values(
        BadArrays{"FortranOrder", "fortran.npy",
                  [](const std::string& path) {
                    write_npy(path, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }",
                              kThree, 12);
                  },
                  "Fortran"},
        BadArrays{"Int32", "ints.npy",
                  [](const std::string& path) {
                    write_npy(path, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                              kThree, 12);
                  },
                  "float32"},
        BadArrays{"FewerValuesThanTheShape", "short.npy",
                  [](const std::string& path) {
                    write_npy(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                              kThree, 12);
                  },
                  "truncated"},
        BadArrays{"NaN", "nan.npy",
                  [](const std::string& path) {
                    write_npy(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                              kWithNan, 12);
                  },
                  "NaN"},
        BadArrays{"NeitherNpyNorHdf5", "text.dat",
                  [](const std::string& path) { std::ofstream(path) << "hello"; }, "neither"}),
    [](const ::testing::TestParamInfo<BadArrays>& info) { return info.param.name; });

// A dataset converted from 40 + 10 MNIST-style images, 16 per shard.
std::string write_sharded_dataset(const test::TempDir& tmp) {
  write_idx_source(tmp.join("src"), 40, 10);
  const std::string out = tmp.join("ds");
  convert_idx("mnist", tmp.join("src"), out, ShardLayout{12 * 16});  // 16 images per shard
  return out;
}

TEST(Dataset, FlippedByteThenMissingShardAreCaught) {
  test::TempDir tmp("ocm-data-test");
  const std::string out = write_sharded_dataset(tmp);
  const Manifest manifest = read_manifest(out);
  ASSERT_EQ(manifest.split("train", out).shards.size(), 3u);
  const std::string victim = out + "/" + manifest.split("train", out).shards[1].file;
  {
    std::fstream file(victim, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(files::file_size(victim) / 2));
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x01);
    file.seekp(static_cast<std::streamoff>(files::file_size(victim) / 2));
    file.write(&byte, 1);
  }
  expect_user_error([&] { verify_dataset(out); }, {victim, "sha256"});
  files::remove_tree(victim);
  expect_user_error([&] { verify_dataset(out); }, {"is missing"});
}

// A manifest.json edit (the first `from` becomes `to`) that read_manifest refuses with a message
// that says `part`.
struct BadManifest {
  std::string name;
  std::string from;
  std::string to;
  std::string part;
};
void PrintTo(const BadManifest& bad, std::ostream* out) {
  *out << bad.name;
}

class DatasetBadManifest : public ::testing::TestWithParam<BadManifest> {};

TEST_P(DatasetBadManifest, IsRefusedNamingTheField) {
  test::TempDir tmp("ocm-data-test");
  const std::string out = write_sharded_dataset(tmp);
  std::string text;
  {
    std::ifstream in(out + "/manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const BadManifest& bad = GetParam();
  const size_t at = text.find(bad.from);
  EXPECT_NE(at, std::string::npos) << bad.from;
  text.replace(at, bad.from.size(), bad.to);
  std::ofstream(out + "/manifest.json") << text;
  expect_user_error([&] { read_manifest(out); }, {bad.part});
}

INSTANTIATE_TEST_SUITE_P(
    , DatasetBadManifest,
    ::testing::Values(BadManifest{"HugeCount", "\"count\": 40", "\"count\": 1000000000000000",
                                  "splits.train.count"},
                      BadManifest{"NegativeElementShape", "    4,\n", "    -4,\n", "element_shape"},
                      BadManifest{"ShardFileOutsideTheDataset", "\"file\": \"shard-00000.h5\"",
                                  "\"file\": \"../../etc/passwd\"", "file"},
                      BadManifest{"UnknownFormatVersion", "\"format_version\": 1",
                                  "\"format_version\": 7", "format_version"},
                      BadManifest{"NotAnObject", "{", "[", "manifest.json"}),
    [](const ::testing::TestParamInfo<BadManifest>& info) { return info.param.name; });

TEST(DatasetWriter, UncommittedWriterLeavesNothing) {
  test::TempDir tmp("ocm-data-test");
  Manifest header;
  header.kind = "arrays";
  header.dtype = "float32";
  header.element_shape = {2};
  {
    DatasetWriter writer(tmp.join("arrays"), header);
    const float values[] = {1, 2, 3, 4};
    writer.append("train", values, nullptr, 2);
  }  // destroyed without commit, as when a conversion throws
  EXPECT_TRUE(files::list_directory(tmp.path()).empty());
}

TEST(Sampler, RankSlicesUnionToTheSingleRankBatchAcrossEpochs) {
  const GlobalBatchSampler sampler(10, 4, 7);  // 10 elements: steps 2 and 4 straddle epochs
  for (int64_t step = 0; step < 8; ++step) {
    std::vector<int64_t> single;
    for (const int64_t p : sampler.positions(step, 0, 1))
      single.push_back(sampler.index_at(p));
    for (const int world : {2, 4}) {
      std::vector<int64_t> joined;
      for (int rank = 0; rank < world; ++rank) {
        for (const int64_t p : sampler.positions(step, rank, world))
          joined.push_back(sampler.index_at(p));
      }
      EXPECT_EQ(joined, single) << "step " << step << " world " << world;
    }
  }
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::set<int64_t> seen;
    for (int64_t p = epoch * 10; p < (epoch + 1) * 10; ++p)
      seen.insert(sampler.index_at(p));
    EXPECT_EQ(seen.size(), 10u) << "epoch " << epoch << " is not a permutation";
  }
  std::vector<int64_t> first, second;
  for (int64_t p = 0; p < 10; ++p)
    first.push_back(sampler.index_at(p));
  for (int64_t p = 10; p < 20; ++p)
    second.push_back(sampler.index_at(p));
  EXPECT_NE(first, second);
  EXPECT_THROW(sampler.positions(0, 0, 3), UserError);
}

TEST(Loader, BatchesAreDeterministicWorldSizeInvariantAndResumable) {
  test::TempDir tmp("ocm-data-test");
  write_idx_source(tmp.join("src"), 37, 5);
  convert_idx("mnist", tmp.join("src"), tmp.join("ds"), ShardLayout{12 * 8});
  const Dataset dataset(tmp.join("ds"));
  const GlobalBatchSampler sampler(dataset.size("train"), 8, 3);
  auto run = [&](int rank, int world, int64_t start, int steps, int threads) {
    LoaderOptions options;
    options.rank = rank;
    options.world = world;
    options.start_step = start;
    options.threads = threads;
    options.horizontal_flip = true;
    options.seed = 11;
    Loader loader(dataset, sampler, options);
    std::vector<Batch> batches;
    for (int i = 0; i < steps; ++i)
      batches.push_back(loader.next());
    return batches;
  };
  const auto single = run(0, 1, 0, 10, 3);
  const auto again = run(0, 1, 0, 10, 1);
  const auto resumed = run(0, 1, 6, 4, 2);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(single[i].step, i);
    EXPECT_TRUE(torch::equal(single[i].data, again[i].data)) << i;
    EXPECT_EQ(single[i].data.sizes(), (std::vector<int64_t>{8, 1, 4, 3}));
    EXPECT_LE(single[i].data.max().item<float>(), 1.0f);
    EXPECT_GE(single[i].data.min().item<float>(), -1.0f);
    if (i >= 6) {
      EXPECT_TRUE(torch::equal(single[i].data, resumed[i - 6].data)) << i;
    }
  }
  const auto rank0 = run(0, 2, 0, 10, 2);
  const auto rank1 = run(1, 2, 0, 10, 2);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(torch::equal(torch::cat({rank0[i].data, rank1[i].data}), single[i].data)) << i;
    EXPECT_TRUE(torch::equal(torch::cat({rank0[i].labels, rank1[i].labels}), single[i].labels))
        << i;
  }
  // Some samples are flipped and some not: a flip is visible against the stored bytes.
  int flipped = 0;
  for (int i = 0; i < 10; ++i) {
    for (int64_t j = 0; j < 8; ++j) {
      const int64_t index = sampler.index_at(single[i].positions[j]);
      std::vector<uint8_t> raw(12);
      dataset.read("train", {index}, raw.data(), nullptr);
      const torch::Tensor stored =
          torch::from_blob(raw.data(), {4, 3}, torch::kUInt8).to(torch::kFloat32) / 127.5 - 1;
      const torch::Tensor loaded = single[i].data[j][0];
      if (!torch::equal(loaded, stored)) {
        EXPECT_TRUE(torch::equal(loaded, stored.flip({1})));
        ++flipped;
      }
    }
  }
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 70);
}

}  // namespace
}  // namespace ocm::data
