// Evaluation PNGs read back from disk: plot text is anti-aliased TrueType, error bars span their
// error, small samples are enlarged in grids, and an unreadable font is a user error.
#include <stb/stb_image.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "eval/image_files.h"
#include "eval/plot.h"
#include "tests/support/temp_dir.h"
#include "tests/support/user_error.h"

namespace ocm::eval {
namespace {

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
  const uint8_t* at(int x, int y) const {
    return &pixels[(static_cast<size_t>(y) * width + x) * channels];
  }
};

Image read_png(const std::string& path, int channels) {
  Image image;
  int stored = 0;
  uint8_t* data = stbi_load(path.c_str(), &image.width, &image.height, &stored, channels);
  if (data == nullptr) {
    ADD_FAILURE() << path << ": " << stbi_failure_reason();
    return image;
  }
  image.channels = channels;
  image.pixels.assign(data, data + static_cast<size_t>(image.width) * image.height * channels);
  stbi_image_free(data);
  return image;
}

// Drawn on (the plots' white background and light grid lines are not).
bool inked(const uint8_t* rgb) {
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 170;
}

const std::vector<PlotSeries> kSeries = {
    PlotSeries{"ddpm fixed", {{10, 42.5}, {20, 30.25}, {50, 21.0}, {100, 15.5}}, {0, 6, 0, 0}},
    PlotSeries{"ddim learned", {{10, 35.0}, {20, 22.0}, {50, 18.0}, {100, 13.0}}},
};

class PlotFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    // The font found at configure time, whatever the caller's environment says.
    ::unsetenv("OCM_FONT");
  }
  void TearDown() override { ::unsetenv("OCM_FONT"); }
  std::string path(const std::string& name) const { return dir_.join(name); }

  // Plotting with OCM_FONT=`font` fails naming the font file and the package that provides the
  // default one, and writes no image.
  void expect_font_error(const std::string& font) const {
    ::setenv("OCM_FONT", font.c_str(), 1);
    test::expect_user_error([&] { write_line_plot(path("p.png"), "t", "x", "y", kSeries); },
                            {font, "fonts-dejavu-core"});
    EXPECT_FALSE(files::exists(path("p.png")));
  }

  test::TempDir dir_{"ocm-plot-test"};
};

TEST_F(PlotFiles, TitleIsAntiAliasedTextWithDarkStrokes) {
  write_line_plot(path("p.png"), "FID against K", "sampling steps K", "FID", kSeries);
  const Image image = read_png(path("p.png"), 3);
  const PlotFrame frame = plot_frame(kSeries);
  ASSERT_GE(image.height, frame.top + frame.height);
  // Black text blended onto white gives greys; a stroke font leaves only black and white.
  int coloured = 0, dark = 0, intermediate = 0, top = image.height, bottom = -1;
  for (int y = 0; y < frame.top - 8; ++y) {
    for (int x = frame.left; x < frame.left + frame.width; ++x) {
      const uint8_t* p = image.at(x, y);
      coloured += p[0] != p[1] || p[1] != p[2];
      dark += p[0] < 60;
      intermediate += p[0] >= 60 && p[0] <= 200;
      if (p[0] < 128) {
        top = std::min(top, y);
        bottom = std::max(bottom, y);
      }
    }
  }
  EXPECT_EQ(coloured, 0);
  EXPECT_GE(dark, 100);
  EXPECT_GE(intermediate, 100);
  // Capitals and descenders of a title about 18 pixels high.
  EXPECT_GE(bottom - top, 12);
  EXPECT_LE(bottom - top, 26);
}

TEST_F(PlotFiles, ErrorBarSpansItsErrorWithCapsAndFitsTheRange) {
  write_line_plot(path("p.png"), "FID against K", "sampling steps K", "FID", kSeries);
  const Image image = read_png(path("p.png"), 3);
  const PlotFrame frame = plot_frame(kSeries);
  // The bar at x = 20 runs from 24.25 to 36.25; the range covers it and every point.
  EXPECT_LE(frame.y_min, 13.0);
  EXPECT_GE(frame.y_max, 42.5);
  const int x = static_cast<int>(std::lround(frame.px(20)));
  const int top = static_cast<int>(std::lround(frame.py(36.25)));
  const int bottom = static_cast<int>(std::lround(frame.py(24.25)));
  ASSERT_GT(bottom - top, 40);
  for (const int y : {top, (top + bottom) / 2 - 10, bottom}) {
    EXPECT_TRUE(inked(image.at(x, y))) << "bar at y = " << y;
  }
  for (const int y : {top, bottom}) {
    EXPECT_TRUE(inked(image.at(x - 4, y))) << "left of the cap at y = " << y;
    EXPECT_TRUE(inked(image.at(x + 4, y))) << "right of the cap at y = " << y;
    EXPECT_FALSE(inked(image.at(x + 4, y + (y == top ? -3 : 3)))) << "beyond the cap at y = " << y;
  }
  EXPECT_FALSE(inked(image.at(x, top - 4)));
  EXPECT_FALSE(inked(image.at(x, bottom + 4)));
}

TEST(PlotFrame, RejectsErrorsOfAnotherLengthThanThePoints) {
  EXPECT_THROW(plot_frame({PlotSeries{"a", {{1, 1}, {2, 2}}, {0.5}}}), std::invalid_argument);
  EXPECT_NO_THROW(plot_frame({PlotSeries{"a", {{1, 1}, {2, 2}}}}));
}

TEST_F(PlotFiles, MissingFontIsAUserErrorNamingTheFileAndThePackage) {
  expect_font_error(path("missing.ttf"));
}

TEST_F(PlotFiles, FileThatIsNoFontIsAUserErrorNamingTheFileAndThePackage) {
  const std::string not_font = path("not-a-font.ttf");
  std::ofstream(not_font) << "this is no TrueType font\n";
  expect_font_error(not_font);
}

TEST_F(PlotFiles, GridEnlargesSmallImagesByNearestNeighbour) {
  torch::manual_seed(3);
  const torch::Tensor images = torch::randint(0, 256, {4, 28, 28, 1}, torch::kUInt8);
  write_grid(path("g.png"), images);
  const Image grid = read_png(path("g.png"), 1);
  // One row of four cells, each with the 2-pixel gap before it and one after the last.
  const int cell = (grid.width - 5 * 2) / 4;
  EXPECT_GE(cell, 84);
  EXPECT_EQ(cell % 28, 0);
  ASSERT_EQ(grid.width, 4 * (cell + 2) + 2);
  ASSERT_EQ(grid.height, cell + 4);
  const auto source = images.accessor<uint8_t, 4>();
  int wrong = 0;
  for (int i = 0; i < 4; ++i)
    for (int y = 0; y < cell; ++y)
      for (int x = 0; x < cell; ++x)
        wrong +=
            *grid.at(2 + i * (cell + 2) + x, 2 + y) != source[i][y * 28 / cell][x * 28 / cell][0];
  EXPECT_EQ(wrong, 0);
  for (int i = 0; i <= 4; ++i)
    EXPECT_EQ(*grid.at(i * (cell + 2), cell / 2), 255) << "gap before cell " << i;
}

TEST_F(PlotFiles, GridLeavesLargeImagesAtTheirSize) {
  const torch::Tensor images = torch::full({2, 64, 64, 3}, 7, torch::kUInt8);
  write_grid(path("g.png"), images);
  const Image grid = read_png(path("g.png"), 3);
  EXPECT_EQ(grid.width, 2 * (64 + 2) + 2);
  EXPECT_EQ(grid.height, 64 + 4);
  EXPECT_EQ(grid.at(2, 2)[0], 7);
  EXPECT_EQ(grid.at(2 + 64, 2)[0], 255);
}

}  // namespace
}  // namespace ocm::eval
