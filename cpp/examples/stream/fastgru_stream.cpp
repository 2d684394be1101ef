// fastgru_stream MODEL.safetensors [INPUT.csv]
//
// Streaming inference with a model saved from Python (`layer.save(path)`): each line of the
// CSV file (or of standard input) holds the I input features of one step; the program prints,
// per line, the H outputs of the network's last layer after that step. The state is carried
// from line to line, as `layer.step` does in Python.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "fastgru/model_file.h"

namespace {

std::vector<float> parse_row(const std::string& line, std::int64_t expected, long line_number) {
  std::vector<float> row;
  std::stringstream fields(line);
  std::string field;
  while (std::getline(fields, field, ',')) {
    try {
      size_t used = 0;
      row.push_back(std::stof(field, &used));
      if (field.find_first_not_of(" \t\r", used) != std::string::npos) throw std::invalid_argument(field);
    } catch (const std::exception&) {
      throw std::invalid_argument("line " + std::to_string(line_number) + ": '" + field + "' is not a number");
    }
  }
  if (static_cast<std::int64_t>(row.size()) != expected) {
    throw std::invalid_argument("line " + std::to_string(line_number) + ": expected " + std::to_string(expected) +
                                " numbers, got " + std::to_string(row.size()));
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s MODEL.safetensors [INPUT.csv]   (input from stdin without a file)\n", argv[0]);
    return 2;
  }
  try {
    const fastgru::Network<float> gru = fastgru::load_network<float>(argv[1]);
    const fastgru::NetworkConfig& c = gru.config();
    if (c.bidirectional) throw std::invalid_argument("a bidirectional model needs whole sequences, not streaming");
    std::ifstream file;
    if (argc == 3) {
      file.open(argv[2]);
      if (!file) throw std::invalid_argument(std::string("cannot open ") + argv[2]);
    }
    std::istream& input = argc == 3 ? static_cast<std::istream&>(file) : std::cin;

    fastgru::SequenceLayout step;  // one step of a batch of one
    step.steps = 1;
    step.batch = 1;
    std::vector<float> state(c.layers * c.hidden, 0.0f), next(state.size()), output(c.hidden);
    std::string line;
    long line_number = 0;
    while (std::getline(input, line)) {
      ++line_number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::vector<float> x = parse_row(line, c.input, line_number);
      gru.forward(step, x.data(), state.data(), output.data(), next.data(), nullptr);
      state.swap(next);
      for (std::int64_t u = 0; u < c.hidden; ++u) std::printf(u ? ",%.9g" : "%.9g", output[u]);
      std::printf("\n");
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fastgru_stream: %s\n", error.what());
    return 1;
  }
  return 0;
}
