#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ocm::eval {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order of x
  // Empty, or one half-width per point: a vertical error bar from y - error to y + error.
  std::vector<double> errors = {};
};

// Where write_line_plot puts the data: the pixel rectangle of the axes in the PNG and the data
// range it spans. The y range includes every error bar.
struct PlotFrame {
  int left = 0, top = 0, width = 0, height = 0;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  double px(double x) const { return left + (x - x_min) / (x_max - x_min) * width; }
  double py(double y) const { return top + (y_max - y) / (y_max - y_min) * height; }
};
PlotFrame plot_frame(const std::vector<PlotSeries>& series);

// A PNG line plot: one coloured line with markers (and error bars where given) per series, axes
// with ticks at the series' x values and at round y values, a title, axis labels and a legend.
// Text is DejaVu Sans (Debian: fonts-dejavu-core), found at configure time; the environment
// variable OCM_FONT names another TrueType file. Non-finite values are left out. Nothing is
// written when no series has a point. Throws UserError when the font cannot be read or the file
// cannot be written (Note [atomic write]).
void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series);

}  // namespace ocm::eval
