/* fastgru_c_stream MODEL.safetensors [INPUT.csv]
 *
 * The streaming example of cpp/examples/stream written in C against the C API: each line of the
 * CSV file (or of standard input) holds the I input features of one step (for a Model with an
 * embedding: one token id); the program prints, per line, the outputs after that step, the state
 * carried from line to line. For a recurrent layer's file (`layer.save`): the H outputs of the
 * network's last layer; for a whole Model's (`model.save`): the head's K outputs, regression
 * values in the targets' units or a classifier's class probabilities. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastgru/fastgru.h"

/* Parses one line of `expected` comma-separated numbers into `row`; 0 on success, else prints why. */
static int parse_row(char* line, float* row, int64_t expected, long line_number) {
  int64_t count = 0;
  char* field = line;
  for (;;) {
    char* end;
    char* comma = strchr(field, ',');
    double value;
    if (comma) *comma = '\0';
    value = strtod(field, &end);
    if (end == field || end[strspn(end, " \t\r\n")] != '\0') {
      fprintf(stderr, "fastgru_c_stream: line %ld: '%s' is not a number\n", line_number, field);
      return 1;
    }
    if (count < expected) row[count] = (float)value;
    ++count;
    if (!comma) break;
    field = comma + 1;
  }
  if (count != expected) {
    fprintf(stderr, "fastgru_c_stream: line %ld: expected %lld numbers, got %lld\n", line_number,
            (long long)expected, (long long)count);
    return 1;
  }
  return 0;
}

/* A stream over the file's network (`model`) or whole Model (`predictor`): the predictor is tried
 * first; a file of another class goes to the network loader. 0 on success, else prints why. */
static int open_stream(const char* path, fastgru_model** model, fastgru_predictor** predictor,
                       fastgru_predictor_info* info, fastgru_stream** stream) {
  if (fastgru_predictor_load(path, FASTGRU_FLOAT32, predictor) == FASTGRU_OK) {
    if (fastgru_predictor_get_info(*predictor, info) == FASTGRU_OK &&
        fastgru_predictor_stream_create(*predictor, 1,
                                        info->classifier ? FASTGRU_OUTPUT_PROBABILITIES : FASTGRU_OUTPUT_VALUES,
                                        stream) == FASTGRU_OK) {
      return 0;
    }
  } else if (strstr(fastgru_last_error(), "expected a fastgru.Model file") != NULL) {
    if (fastgru_model_load(path, FASTGRU_FLOAT32, model) == FASTGRU_OK &&
        fastgru_model_get_info(*model, &info->network) == FASTGRU_OK &&
        fastgru_stream_create(*model, 1, stream) == FASTGRU_OK) {
      info->outputs = info->network.hidden;
      info->vocab_size = 0;
      return 0;
    }
  }
  fprintf(stderr, "fastgru_c_stream: %s\n", fastgru_last_error());
  return 1;
}

int main(int argc, char** argv) {
  fastgru_model* model = NULL;
  fastgru_predictor* predictor = NULL;
  fastgru_stream* stream = NULL;
  fastgru_predictor_info info;
  FILE* input = stdin;
  char* line = NULL;
  size_t capacity = 0;
  long line_number = 0;
  float *x = NULL, *y = NULL;
  int status = 1;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s MODEL.safetensors [INPUT.csv]   (input from stdin without a file)\n", argv[0]);
    return 2;
  }
  if (open_stream(argv[1], &model, &predictor, &info, &stream)) goto done;
  if (argc == 3 && (input = fopen(argv[2], "r")) == NULL) {
    fprintf(stderr, "fastgru_c_stream: cannot open %s\n", argv[2]);
    goto done;
  }
  x = malloc(sizeof(float) * (size_t)info.network.input);
  y = malloc(sizeof(float) * (size_t)info.outputs);
  if (!x || !y) {
    fprintf(stderr, "fastgru_c_stream: out of memory\n");
    goto done;
  }
  while (getline(&line, &capacity, input) != -1) {
    int64_t u;
    ++line_number;
    if (line[strspn(line, " \t\r\n")] == '\0') continue;
    if (info.vocab_size > 0) {
      /* one token id: the library checks its range */
      char* end;
      const int64_t id = strtoll(line, &end, 10);
      if (end == line || end[strspn(end, " \t\r\n")] != '\0') {
        line[strcspn(line, "\r\n")] = '\0';
        fprintf(stderr, "fastgru_c_stream: line %ld: expected one integer token id, got '%s'\n", line_number, line);
        goto done;
      }
      if (fastgru_stream_step_ids_f32(stream, &id, y) != FASTGRU_OK) {
        fprintf(stderr, "fastgru_c_stream: line %ld: %s\n", line_number, fastgru_last_error());
        goto done;
      }
    } else {
      if (parse_row(line, x, info.network.input, line_number)) goto done;
      if (fastgru_stream_step_f32(stream, x, y) != FASTGRU_OK) {
        fprintf(stderr, "fastgru_c_stream: %s\n", fastgru_last_error());
        goto done;
      }
    }
    for (u = 0; u < info.outputs; ++u) printf(u ? ",%.9g" : "%.9g", y[u]);
    printf("\n");
  }
  status = 0;
done:
  free(line);
  free(x);
  free(y);
  if (input && input != stdin) fclose(input);
  fastgru_stream_free(stream);
  fastgru_model_free(model);
  fastgru_predictor_free(predictor);
  return status;
}
