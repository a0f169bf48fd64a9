#include "eval/plot.h"

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/error.h"

namespace ocm::eval {
namespace {

using Color = std::array<uint8_t, 3>;

class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), pixels_(width * height * 3, 255) {}

  void fill(int x0, int y0, int x1, int y1, Color c) {
    for (int y = std::max(0, y0); y < std::min(height_, y1); ++y)
      for (int x = std::max(0, x0); x < std::min(width_, x1); ++x)
        std::copy(c.begin(), c.end(), pixels_.begin() + (y * width_ + x) * 3);
  }

  void line(double x0, double y0, double x1, double y1, Color c, int thickness) {
    const int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int i = 0; i <= steps; ++i) {
      const double t = static_cast<double>(i) / steps;
      const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0)));
      const int y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
      fill(x - thickness / 2, y - thickness / 2, x + (thickness + 1) / 2, y + (thickness + 1) / 2,
           c);
    }
  }

  // Text from stb_easy_font's quads, scaled by `scale`; returns the width drawn.
  int text(int x, int y, const std::string& s, Color c, int scale = 2) {
    std::vector<char> buffer(s.size() * 300 + 64);
    std::string copy = s;
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(),
                                          static_cast<int>(buffer.size()));
    for (int q = 0; q < quads; ++q) {
      // A quad is 4 vertices of (x, y, z: float, colour: 4 bytes); vertices 0 and 2 span it.
      const float* a = reinterpret_cast<const float*>(buffer.data() + q * 64);
      const float* b = reinterpret_cast<const float*>(buffer.data() + q * 64 + 32);
      fill(x + static_cast<int>(a[0] * scale), y + static_cast<int>(a[1] * scale),
           x + static_cast<int>(b[0] * scale), y + static_cast<int>(b[1] * scale), c);
    }
    std::string measure = s;
    return stb_easy_font_width(measure.data()) * scale;
  }

  void save(const std::string& path) const {
    if (stbi_write_png(path.c_str(), width_, height_, 3, pixels_.data(), width_ * 3) == 0)
      throw UserError(path, "could not be written", "a writable location for the plot");
  }

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

// Tick labels: 4 significant digits, and exactly 0 for values that are 0 up to rounding.
std::string number(double v, double scale) {
  if (std::abs(v) < 1e-9 * scale)
    v = 0;
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

}  // namespace

void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series) {
  static const Color palette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                  {188, 189, 34},  {23, 190, 207}};
  constexpr int kWidth = 900, kHeight = 520, kLeft = 90, kRight = 260, kTop = 50, kBottom = 70;
  Canvas canvas(kWidth, kHeight);
  std::set<double> xs;
  double y_min = INFINITY, y_max = -INFINITY;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      xs.insert(x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  if (xs.empty())
    return;
  if (y_max - y_min < 1e-12) {
    y_min -= 0.5;
    y_max += 0.5;
  }
  const double pad = 0.06 * (y_max - y_min);
  y_min -= pad;
  y_max += pad;
  const double x_min = *xs.begin(), x_max = std::max(*xs.rbegin(), x_min + 1);
  const int plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + (y_max - y) / (y_max - y_min) * plot_h; };
  const Color ink{0, 0, 0}, grid{225, 225, 225};
  // y ticks at round steps
  const double raw = (y_max - y_min) / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / magnitude < 2   ? 2 * magnitude
                      : raw / magnitude < 5 ? 5 * magnitude
                                            : 10 * magnitude;
  for (double y = std::ceil(y_min / step) * step; y <= y_max; y += step) {
    canvas.line(kLeft, py(y), kLeft + plot_w, py(y), grid, 1);
    const std::string label = number(y, y_max - y_min);
    canvas.text(kLeft - 10 - static_cast<int>(label.size()) * 10, static_cast<int>(py(y)) - 6,
                label, ink);
  }
  for (const double x : xs) {
    canvas.line(px(x), kTop, px(x), kTop + plot_h, grid, 1);
    const std::string label = number(x, x_max - x_min);
    canvas.text(static_cast<int>(px(x)) - static_cast<int>(label.size()) * 5, kTop + plot_h + 10,
                label, ink);
  }
  canvas.line(kLeft, kTop, kLeft, kTop + plot_h, ink, 2);
  canvas.line(kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h, ink, 2);
  canvas.text(kLeft + plot_w / 2 - static_cast<int>(title.size()) * 5, 12, title, ink);
  canvas.text(kLeft + plot_w / 2 - static_cast<int>(x_label.size()) * 5, kHeight - 30, x_label,
              ink);
  canvas.text(10, kTop - 25, y_label, ink);
  for (size_t i = 0; i < series.size(); ++i) {
    const Color c = palette[i % (sizeof(palette) / sizeof(palette[0]))];
    auto points = series[i].points;
    std::sort(points.begin(), points.end());
    for (size_t j = 0; j + 1 < points.size(); ++j)
      canvas.line(px(points[j].first), py(points[j].second), px(points[j + 1].first),
                  py(points[j + 1].second), c, 3);
    for (const auto& [x, y] : points)
      canvas.fill(static_cast<int>(px(x)) - 4, static_cast<int>(py(y)) - 4,
                  static_cast<int>(px(x)) + 5, static_cast<int>(py(y)) + 5, c);
    const int ly = kTop + 10 + static_cast<int>(i) * 24;
    canvas.fill(kLeft + plot_w + 20, ly, kLeft + plot_w + 44, ly + 12, c);
    canvas.text(kLeft + plot_w + 52, ly - 1, series[i].label, ink);
  }
  canvas.save(path);
}

}  // namespace ocm::eval
