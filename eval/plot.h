#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ocm::eval {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order of x
};

// A PNG line plot: one coloured line with markers per series, axes with ticks at the series'
// x values and at round y values, a title, axis labels and a legend. Throws UserError when the
// file cannot be written.
void write_line_plot(const std::string& path, const std::string& title, const std::string& x_label,
                     const std::string& y_label, const std::vector<PlotSeries>& series);

}  // namespace ocm::eval
