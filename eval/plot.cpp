#include "eval/plot.h"

// Debian's libstb compiles stb_truetype and stb_image_write into the library, so these are
// declarations only.
#include <stb/stb_image_write.h>
#include <stb/stb_truetype.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "common/files.h"

// The build passes the DejaVu Sans it found at configure time; Debian's path otherwise.
#ifndef OCM_DEFAULT_FONT
#define OCM_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#endif

namespace ocm::eval {
namespace {

using Color = std::array<uint8_t, 3>;

// Layout in pixels. Sizes are em sizes, chosen so that the text reads at the PNG's own size.
constexpr int kLeft = 92, kTop = 48, kPlotWidth = 600, kPlotHeight = 380, kBottom = 66;
constexpr int kLegendGap = 24, kLegendSwatch = 28, kLegendRow = 24;
constexpr float kTitleSize = 18, kLabelSize = 15, kTickSize = 14, kLegendSize = 14;
constexpr Color kInk{0, 0, 0}, kGrid{228, 228, 228};

// Glyph coverage of one line of text, 0 to 255 per pixel; glyphs sit on row `baseline`.
struct TextMask {
  int width = 0, height = 0, baseline = 0;
  std::vector<uint8_t> alpha;
};

// Labels are UTF-8 (a sampler or dataset name may not be ASCII); a malformed byte becomes '?'.
std::vector<int> codepoints(const std::string& text) {
  std::vector<int> result;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte < 0x80           ? 1
                          : (byte >> 5) == 0x6  ? 2
                          : (byte >> 4) == 0xe  ? 3
                          : (byte >> 3) == 0x1e ? 4
                                                : 0;
    if (length == 0 || i + length > text.size()) {
      result.push_back('?');
      ++i;
      continue;
    }
    int codepoint = length == 1 ? byte : byte & (0x7f >> length);
    for (size_t k = 1; k < length; ++k)
      codepoint = (codepoint << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    result.push_back(codepoint);
    i += length;
  }
  return result;
}

UserError unreadable_font(const std::string& path, const std::string& what) {
  return UserError(path, what, "a TrueType font for plot text (DejaVu Sans)",
                   "Install the Debian package fonts-dejavu-core (launch/setup.sh does), or set "
                   "OCM_FONT to a readable .ttf file.");
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open())
    throw unreadable_font(path, std::string("cannot be opened (") + std::strerror(errno) + ")");
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (in.bad() || data.empty())
    throw unreadable_font(path, "cannot be read or is empty");
  return data;
}

// A TrueType font rasterised by stb_truetype. info_ points into data_, so a Font is not copied.
class Font {
 public:
  explicit Font(const std::string& path) : data_(read_file(path)) {
    // stb_truetype reads the 12-byte table directory unchecked, so shorter files stop here.
    const int offset = data_.size() < 12 ? -1 : stbtt_GetFontOffsetForIndex(data_.data(), 0);
    if (offset < 0 || stbtt_InitFont(&info_, data_.data(), offset) == 0)
      throw unreadable_font(path, "is not a TrueType font");
  }
  Font(const Font&) = delete;
  Font& operator=(const Font&) = delete;

  float width(const std::string& text, float size) const {
    const float scale = stbtt_ScaleForMappingEmToPixels(&info_, size);
    const std::vector<int> text_codepoints = codepoints(text);
    float width = 0;
    for (size_t i = 0; i < text_codepoints.size(); ++i)
      width += advance(text_codepoints, i, scale);
    return width;
  }

  TextMask render(const std::string& text, float size) const {
    const float scale = stbtt_ScaleForMappingEmToPixels(&info_, size);
    int ascent = 0, descent = 0, line_gap = 0;
    stbtt_GetFontVMetrics(&info_, &ascent, &descent, &line_gap);
    TextMask mask;
    mask.baseline = static_cast<int>(std::ceil(ascent * scale));
    mask.height = mask.baseline + static_cast<int>(std::ceil(-descent * scale));
    mask.width = static_cast<int>(std::ceil(width(text, size))) + 2;
    mask.alpha.assign(static_cast<size_t>(mask.width) * mask.height, 0);
    const std::vector<int> text_codepoints = codepoints(text);
    float x = 1;  // room for a glyph that starts left of its origin
    for (size_t i = 0; i < text_codepoints.size(); ++i) {
      draw_glyph(mask, text_codepoints[i], scale, x);
      x += advance(text_codepoints, i, scale);
    }
    return mask;
  }

 private:
  float advance(const std::vector<int>& text, size_t i, float scale) const {
    int advance = 0, bearing = 0;
    stbtt_GetCodepointHMetrics(&info_, text[i], &advance, &bearing);
    if (i + 1 < text.size())
      advance += stbtt_GetCodepointKernAdvance(&info_, text[i], text[i + 1]);
    return advance * scale;
  }

  // Rasterises at the glyph's fractional x, so letter spacing is even rather than snapped.
  void draw_glyph(TextMask& mask, int codepoint, float scale, float x) const {
    const int origin = static_cast<int>(std::floor(x));
    const float shift = x - origin;
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    stbtt_GetCodepointBitmapBoxSubpixel(&info_, codepoint, scale, scale, shift, 0, &x0, &y0, &x1,
                                        &y1);
    const int w = x1 - x0, h = y1 - y0;
    if (w <= 0 || h <= 0)
      return;
    std::vector<uint8_t> glyph(static_cast<size_t>(w) * h);
    stbtt_MakeCodepointBitmapSubpixel(&info_, glyph.data(), w, h, w, scale, scale, shift, 0,
                                      codepoint);
    for (int gy = 0; gy < h; ++gy) {
      for (int gx = 0; gx < w; ++gx) {
        const int mx = origin + x0 + gx, my = mask.baseline + y0 + gy;
        if (mx < 0 || my < 0 || mx >= mask.width || my >= mask.height)
          continue;
        uint8_t& alpha = mask.alpha[static_cast<size_t>(my) * mask.width + mx];
        alpha = std::max(alpha, glyph[static_cast<size_t>(gy) * w + gx]);
      }
    }
  }

  std::vector<unsigned char> data_;
  stbtt_fontinfo info_{};
};

std::string font_path() {
  const char* path = std::getenv("OCM_FONT");
  return path != nullptr && *path != '\0' ? path : OCM_DEFAULT_FONT;
}

// An RGB image on white. Pixel centres lie on integer coordinates.
class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), pixels_(static_cast<size_t>(width) * height * 3, 255) {}

  // Mixes `c` into one pixel by `alpha` in [0, 1]: the coverage of an edge or a glyph.
  void blend(int x, int y, Color c, double alpha) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0)
      return;
    alpha = std::min(alpha, 1.0);
    uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
    for (int k = 0; k < 3; ++k)
      p[k] = static_cast<uint8_t>(std::lround(p[k] + alpha * (c[k] - p[k])));
  }

  void fill(int x0, int y0, int x1, int y1, Color c) {
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x)
        blend(x, y, c, 1);
  }

  // An anti-aliased segment with round ends: a pixel is covered by how far it lies inside.
  void line(double x0, double y0, double x1, double y1, Color c, double thickness) {
    const double r = thickness / 2, dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy;
    for (int y = static_cast<int>(std::floor(std::min(y0, y1) - r - 1));
         y <= static_cast<int>(std::ceil(std::max(y0, y1) + r + 1)); ++y) {
      for (int x = static_cast<int>(std::floor(std::min(x0, x1) - r - 1));
           x <= static_cast<int>(std::ceil(std::max(x0, x1) + r + 1)); ++x) {
        const double t =
            length2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / length2, 0.0, 1.0) : 0.0;
        const double distance = std::hypot(x - x0 - t * dx, y - y0 - t * dy);
        blend(x, y, c, r + 0.5 - distance);
      }
    }
  }

  void disc(double x, double y, double radius, Color c) { line(x, y, x, y, c, 2 * radius); }

  // Text with its top-left corner at (left, top), or turned a quarter anticlockwise (read from
  // bottom to top) with that corner at the bottom-left.
  void text(const TextMask& mask, int left, int top, Color c, bool upright = true) {
    for (int my = 0; my < mask.height; ++my) {
      for (int mx = 0; mx < mask.width; ++mx) {
        const double alpha = mask.alpha[static_cast<size_t>(my) * mask.width + mx] / 255.0;
        if (upright)
          blend(left + mx, top + my, c, alpha);
        else
          blend(left + my, top + mask.width - 1 - mx, c, alpha);
      }
    }
  }

  void save(const std::string& path) const {
    files::write_atomically(path, [&](const std::string& temporary) {
      if (stbi_write_png(temporary.c_str(), width_, height_, 3, pixels_.data(), width_ * 3) == 0)
        throw UserError(path, "could not be written", "a writable location for the plot");
    });
  }

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

enum class Align { kLeft, kCenter, kRight };

// Text whose baseline is row `y` and which starts at, is centred on or ends at column `x`.
void draw_text(Canvas& canvas, const Font& font, const std::string& text, float size, double x,
               double y, Align align) {
  const TextMask mask = font.render(text, size);
  const double shift = align == Align::kLeft ? 0 : align == Align::kCenter ? 0.5 : 1;
  canvas.text(mask, static_cast<int>(std::lround(x - shift * (mask.width - 2))) - 1,
              static_cast<int>(std::lround(y)) - mask.baseline, kInk);
}

// Tick labels: 4 significant digits, and exactly 0 for values that are 0 up to rounding.
std::string number(double v, double scale) {
  if (std::abs(v) < 1e-9 * scale)
    v = 0;
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

struct Point {
  double x, y, error;  // error: the half-height of the error bar, 0 for none
};

// A series' finite points in order of x; an error that is not finite draws no bar.
std::vector<Point> finite_points(const PlotSeries& series) {
  if (!series.errors.empty() && series.errors.size() != series.points.size())
    throw std::invalid_argument("plot series '" + series.label + "' has " +
                                std::to_string(series.errors.size()) + " errors for " +
                                std::to_string(series.points.size()) + " points");
  std::vector<Point> points;
  for (size_t i = 0; i < series.points.size(); ++i) {
    const auto [x, y] = series.points[i];
    const double error = series.errors.empty() ? 0 : std::abs(series.errors[i]);
    if (std::isfinite(x) && std::isfinite(y))
      points.push_back({x, y, std::isfinite(error) ? error : 0});
  }
  std::sort(points.begin(), points.end(),
            [](const Point& a, const Point& b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
  return points;
}

// A data range widened so markers and bars at its ends stay inside the axes; a single value
// gets a range of 1 around it.
std::pair<double, double> padded(double lo, double hi) {
  if (hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad};
}

}  // namespace

PlotFrame plot_frame(const std::vector<PlotSeries>& series) {
  PlotFrame frame;
  frame.left = kLeft;
  frame.top = kTop;
  frame.width = kPlotWidth;
  frame.height = kPlotHeight;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const PlotSeries& s : series) {
    for (const Point& p : finite_points(s)) {
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, p.y - p.error);
      y_hi = std::max(y_hi, p.y + p.error);
    }
  }
  if (x_lo > x_hi)
    return frame;
  std::tie(frame.x_min, frame.x_max) = padded(x_lo, x_hi);
  std::tie(frame.y_min, frame.y_max) = padded(y_lo, y_hi);
  return frame;
}

namespace {

// Grid lines, tick marks and labels at round y values (steps of 1, 2 or 5 times a power of 10).
void draw_y_axis(Canvas& canvas, const Font& font, const PlotFrame& frame) {
  const double raw = (frame.y_max - frame.y_min) / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / magnitude < 2   ? 2 * magnitude
                      : raw / magnitude < 5 ? 5 * magnitude
                                            : 10 * magnitude;
  const int right = frame.left + frame.width;
  for (auto i = static_cast<int64_t>(std::ceil(frame.y_min / step)); i * step <= frame.y_max; ++i) {
    const double y = std::round(frame.py(i * step));
    canvas.line(frame.left, y, right, y, kGrid, 1);
    canvas.line(frame.left - 5, y, frame.left, y, kInk, 1);
    // The baseline sits half a digit's height (0.73 em in DejaVu Sans) below the tick.
    draw_text(canvas, font, number(i * step, frame.y_max - frame.y_min), kTickSize, frame.left - 9,
              y + 0.365 * kTickSize, Align::kRight);
  }
}

// Ticks at the series' x values; a label that would overlap the one before it is left out.
void draw_x_axis(Canvas& canvas, const Font& font, const PlotFrame& frame,
                 const std::set<double>& xs) {
  const int bottom = frame.top + frame.height;
  double last_right = -INFINITY;
  for (const double x : xs) {
    const double px = std::round(frame.px(x));
    canvas.line(px, frame.top, px, bottom, kGrid, 1);
    canvas.line(px, bottom, px, bottom + 5, kInk, 1);
    const std::string label = number(x, frame.x_max - frame.x_min);
    const double half = font.width(label, kTickSize) / 2;
    if (px - half < last_right + 8)
      continue;
    draw_text(canvas, font, label, kTickSize, px, bottom + 8 + 0.93 * kTickSize, Align::kCenter);
    last_right = px + half;
  }
}

// The line through the points, then error bars with caps, then markers on top.
void draw_series(Canvas& canvas, const PlotFrame& frame, const std::vector<Point>& points,
                 Color c) {
  for (size_t j = 0; j + 1 < points.size(); ++j)
    canvas.line(frame.px(points[j].x), frame.py(points[j].y), frame.px(points[j + 1].x),
                frame.py(points[j + 1].y), c, 2.5);
  for (const Point& p : points) {
    if (p.error <= 0)
      continue;
    // Whole-pixel positions keep the thin bar and its caps crisp.
    const double x = std::round(frame.px(p.x));
    const double top = std::round(frame.py(p.y + p.error));
    const double bottom = std::round(frame.py(p.y - p.error));
    canvas.line(x, top, x, bottom, c, 1.5);
    canvas.line(x - 5, top, x + 5, top, c, 1.5);
    canvas.line(x - 5, bottom, x + 5, bottom, c, 1.5);
  }
  for (const Point& p : points)
    canvas.disc(frame.px(p.x), frame.py(p.y), 4, c);
}

// One row per series to the right of the axes: a short line with a marker, then the label.
void draw_legend(Canvas& canvas, const Font& font, const std::vector<PlotSeries>& series,
                 const Color* palette, size_t colors) {
  const int left = kLeft + kPlotWidth + kLegendGap;
  for (size_t i = 0; i < series.size(); ++i) {
    const Color c = palette[i % colors];
    const double y = kTop + 12 + static_cast<double>(i) * kLegendRow;
    canvas.line(left, y, left + kLegendSwatch, y, c, 2.5);
    canvas.disc(left + kLegendSwatch / 2.0, y, 4, c);
    draw_text(canvas, font, series[i].label, kLegendSize, left + kLegendSwatch + 8,
              y + 0.365 * kLegendSize, Align::kLeft);
  }
}

int legend_width(const Font& font, const std::vector<PlotSeries>& series) {
  float widest = 0;
  for (const PlotSeries& s : series)
    widest = std::max(widest, font.width(s.label, kLegendSize));
  return kLegendGap + kLegendSwatch + 8 + static_cast<int>(std::ceil(widest)) + 16;
}

}  // namespace

void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series) {
  // Matplotlib's tab10: distinct hues that stay apart for colour-blind readers.
  static const Color palette[] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                  {188, 189, 34},  {23, 190, 207}};
  constexpr size_t kColors = std::size(palette);
  std::set<double> xs;
  for (const PlotSeries& s : series)
    for (const Point& p : finite_points(s))
      xs.insert(p.x);
  if (xs.empty())
    return;
  const Font font(font_path());
  const PlotFrame frame = plot_frame(series);
  const int height = std::max(kTop + kPlotHeight + kBottom,
                              kTop + static_cast<int>(series.size()) * kLegendRow + 12);
  Canvas canvas(kLeft + kPlotWidth + legend_width(font, series), height);
  draw_y_axis(canvas, font, frame);
  draw_x_axis(canvas, font, frame, xs);
  for (size_t i = 0; i < series.size(); ++i)
    draw_series(canvas, frame, finite_points(series[i]), palette[i % kColors]);
  const int bottom = kTop + kPlotHeight;
  canvas.fill(kLeft - 1, kTop, kLeft + 1, bottom + 1, kInk);
  canvas.fill(kLeft - 1, bottom - 1, kLeft + kPlotWidth + 1, bottom + 1, kInk);
  draw_legend(canvas, font, series, palette, kColors);
  draw_text(canvas, font, title, kTitleSize, kLeft + kPlotWidth / 2.0, kTop - 18, Align::kCenter);
  draw_text(canvas, font, x_label, kLabelSize, kLeft + kPlotWidth / 2.0, bottom + 56,
            Align::kCenter);
  const TextMask y_mask = font.render(y_label, kLabelSize);
  canvas.text(y_mask, 14, kTop + kPlotHeight / 2 - y_mask.width / 2, kInk, false);
  canvas.save(path);
}

}  // namespace ocm::eval
