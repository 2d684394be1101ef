// fastgru._core: a thin pybind11 client of the C++ core. It checks dtype, shape and
// contiguity, allocates outputs and releases the GIL around compute; it does no maths.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fastgru/gru.h"
#include "fastgru/runtime.h"

namespace py = pybind11;

namespace {

using Shape = std::vector<py::ssize_t>;

std::string shape_text(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

// Returns the array's data after checking that it is exactly what the core will read or write.
template <typename Real>
Real* checked_data(const py::array& array, const char* name, const Shape& expected,
                   bool writable = false) {
  if (!array.dtype().is(py::dtype::of<Real>())) {
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<Real>())) + ", got " +
                         std::string(py::str(array.dtype())));
  }
  const Shape actual(array.shape(), array.shape() + array.ndim());
  if (actual != expected) {
    throw py::value_error(std::string(name) + ": expected shape " + shape_text(expected) +
                          ", got " + shape_text(actual));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  }
  if (writable && !array.writeable()) {
    throw py::value_error(std::string(name) + ": expected a writable array");
  }
  return static_cast<Real*>(const_cast<void*>(array.data()));
}

template <typename Real>
const Real* optional_data(const std::optional<py::array>& array, const char* name,
                          const Shape& expected) {
  return array ? checked_data<Real>(*array, name, expected) : nullptr;
}

template <typename Real>
class PyGruLayer {
 public:
  PyGruLayer(py::ssize_t input_size, py::ssize_t hidden_size, bool reset_after,
             const py::array& weight_ih, const py::array& weight_hh,
             const std::optional<py::array>& bias_ih, const std::optional<py::array>& bias_hh)
      : layer_(make_layer(input_size, hidden_size, reset_after, weight_ih, weight_hh, bias_ih,
                          bias_hh)) {}

  py::ssize_t input_size() const { return layer_.sizes().input; }
  py::ssize_t hidden_size() const { return layer_.sizes().hidden; }
  bool reset_after() const { return layer_.reset_mode() == fastgru::ResetMode::after; }
  bool has_bias() const { return layer_.has_bias(); }

  // cache_out: a (T, B, 4H) array to write the training cache into (reused between calls),
  // or None to allocate one.
  py::tuple forward(const py::array& x, const std::optional<py::array>& h0, bool train,
                    const std::optional<py::array>& cache_out) const {
    if (x.ndim() != 3) {
      throw py::value_error("x: expected 3 dimensions (T, B, I), got " +
                            std::to_string(x.ndim()));
    }
    const py::ssize_t T = x.shape(0), B = x.shape(1), H = hidden_size();
    const Real* x_data = checked_data<Real>(x, "x", {T, B, input_size()});
    const Real* h0_data = optional_data<Real>(h0, "h0", {B, H});
    py::array_t<Real> y({T, B, H});
    py::array_t<Real> h_n({B, H});
    py::object cache = py::none();
    Real* cache_data = nullptr;
    if (train && cache_out) {
      cache_data = checked_data<Real>(*cache_out, "cache_out", {T, B, 4 * H}, true);
      cache = *cache_out;
    } else if (train) {
      auto cache_array = py::array_t<Real>({T, B, 4 * H});
      cache_data = cache_array.mutable_data();
      cache = cache_array;
    }
    Real* y_data = y.mutable_data();
    Real* h_n_data = h_n.mutable_data();
    {
      py::gil_scoped_release release;
      layer_.forward(T, B, x_data, h0_data, y_data, h_n_data, cache_data);
    }
    return py::make_tuple(y, h_n, cache);
  }

  py::tuple backward(const py::array& x, const std::optional<py::array>& h0, const py::array& y,
                     const py::array& cache, const py::array& dy,
                     const std::optional<py::array>& dh_n, const py::array& grad_weight_ih,
                     const py::array& grad_weight_hh,
                     const std::optional<py::array>& grad_bias_ih,
                     const std::optional<py::array>& grad_bias_hh) const {
    if (x.ndim() != 3) {
      throw py::value_error("x: expected 3 dimensions (T, B, I), got " +
                            std::to_string(x.ndim()));
    }
    const py::ssize_t T = x.shape(0), B = x.shape(1), I = input_size(), H = hidden_size();
    const Real* x_data = checked_data<Real>(x, "x", {T, B, I});
    const Real* h0_data = optional_data<Real>(h0, "h0", {B, H});
    const Real* y_data = checked_data<Real>(y, "y", {T, B, H});
    const Real* cache_data = checked_data<Real>(cache, "cache", {T, B, 4 * H});
    const Real* dy_data = checked_data<Real>(dy, "dy", {T, B, H});
    const Real* dh_n_data = optional_data<Real>(dh_n, "dh_n", {B, H});
    if (has_bias() != (grad_bias_ih.has_value() && grad_bias_hh.has_value())) {
      throw py::value_error(has_bias() ? "grad_bias_ih, grad_bias_hh: required for a layer with bias"
                                       : "grad_bias_ih, grad_bias_hh: must be None for a layer without bias");
    }
    fastgru::GruGradientsView<Real> grads;
    grads.weight_ih = checked_data<Real>(grad_weight_ih, "grad_weight_ih", {3 * H, I}, true);
    grads.weight_hh = checked_data<Real>(grad_weight_hh, "grad_weight_hh", {3 * H, H}, true);
    if (has_bias()) {
      grads.bias_ih = checked_data<Real>(*grad_bias_ih, "grad_bias_ih", {3 * H}, true);
      grads.bias_hh = checked_data<Real>(*grad_bias_hh, "grad_bias_hh", {3 * H}, true);
    }
    py::array_t<Real> dx({T, B, I});
    py::array_t<Real> dh0({B, H});
    Real* dx_data = dx.mutable_data();
    Real* dh0_data = dh0.mutable_data();
    {
      py::gil_scoped_release release;
      layer_.backward(T, B, x_data, h0_data, y_data, cache_data, dy_data, dh_n_data, dx_data,
                      dh0_data, grads);
    }
    return py::make_tuple(dx, dh0);
  }

 private:
  static fastgru::GruLayer<Real> make_layer(py::ssize_t input_size, py::ssize_t hidden_size,
                                            bool reset_after, const py::array& weight_ih,
                                            const py::array& weight_hh,
                                            const std::optional<py::array>& bias_ih,
                                            const std::optional<py::array>& bias_hh) {
    if (input_size < 1) throw py::value_error("input_size: expected >= 1, got " + std::to_string(input_size));
    if (hidden_size < 1) throw py::value_error("hidden_size: expected >= 1, got " + std::to_string(hidden_size));
    if (bias_ih.has_value() != bias_hh.has_value()) {
      throw py::value_error("bias_ih, bias_hh: expected both or neither");
    }
    const py::ssize_t G = 3 * hidden_size;
    fastgru::GruWeightsView<Real> weights;
    weights.weight_ih = checked_data<Real>(weight_ih, "weight_ih", {G, input_size});
    weights.weight_hh = checked_data<Real>(weight_hh, "weight_hh", {G, hidden_size});
    weights.bias_ih = optional_data<Real>(bias_ih, "bias_ih", {G});
    weights.bias_hh = optional_data<Real>(bias_hh, "bias_hh", {G});
    return fastgru::GruLayer<Real>({input_size, hidden_size},
                                   reset_after ? fastgru::ResetMode::after
                                               : fastgru::ResetMode::before,
                                   weights);
  }

  fastgru::GruLayer<Real> layer_;
};

template <typename Real>
void bind_layer(py::module_& m, const char* name) {
  py::class_<PyGruLayer<Real>>(m, name)
      .def(py::init<py::ssize_t, py::ssize_t, bool, const py::array&, const py::array&,
                    const std::optional<py::array>&, const std::optional<py::array>&>(),
           py::arg("input_size"), py::arg("hidden_size"), py::arg("reset_after"),
           py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih") = py::none(),
           py::arg("bias_hh") = py::none())
      .def_property_readonly("input_size", &PyGruLayer<Real>::input_size)
      .def_property_readonly("hidden_size", &PyGruLayer<Real>::hidden_size)
      .def_property_readonly("reset_after", &PyGruLayer<Real>::reset_after)
      .def_property_readonly("has_bias", &PyGruLayer<Real>::has_bias)
      .def("forward", &PyGruLayer<Real>::forward, py::arg("x"), py::arg("h0") = py::none(),
           py::arg("train") = false, py::arg("cache_out") = py::none())
      .def("backward", &PyGruLayer<Real>::backward, py::arg("x"), py::arg("h0"), py::arg("y"),
           py::arg("cache"), py::arg("dy"), py::arg("dh_n"), py::arg("grad_weight_ih"),
           py::arg("grad_weight_hh"), py::arg("grad_bias_ih") = py::none(),
           py::arg("grad_bias_hh") = py::none());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastgru's compiled core (private: use the fastgru package).";
  py::register_exception<std::invalid_argument>(m, "CoreArgumentError", PyExc_ValueError);
  m.def("available_isas", &fastgru::available_isas,
        "Instruction sets this CPU and OS can run, best first.");
  m.def("active_isa", &fastgru::active_isa, "The instruction set new float32 layers use.");
  m.def("set_isa", &fastgru::set_isa, py::arg("isa"),
        "Selects the instruction set for layers created from now on.");
  m.def("set_num_threads", &fastgru::set_num_threads, py::arg("n"),
        "Threads for compute calls; 0 follows OpenMP.");
  m.def("num_threads", &fastgru::num_threads, "The thread count compute calls use at most.");
  bind_layer<float>(m, "GruLayerF32");
  bind_layer<double>(m, "GruLayerF64");
}
