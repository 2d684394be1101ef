// oneDNN peer for the fastgru benchmark (bench/run.py compiles and runs it).
//
// Times one GRU layer with oneDNN's RNN primitives, float32, CPU engine:
//   reset_after  (PyTorch's convention)  -> lbr_gru_forward / lbr_gru_backward
//   reset_before (Cho et al., ONNX lbr=0) -> gru_forward / gru_backward
// for
//   inference: one forward_inference execution over the whole sequence;
//   train:     one forward_training execution (writes the workspace) + one backward execution
//              (diff_src_layer, diff_src_iter, diff_weights_layer/iter, diff_bias), plus a reorder
//              of the weight gradients to the user layout when oneDNN chose another one.
// Weights are reordered into the primitives' preferred layouts once, before timing (as fastgru
// packs its weights once when they are loaded). Every timed execution ends with stream.wait().
//
// Inputs are read from the data directory that run.py writes (raw little-endian float32, the
// same arrays every implementation gets, PyTorch layout, gate blocks r, z, n):
//   x.f32 (T,B,I)  h0.f32 (B,H)  dy.f32 (T,B,H)  w_ih.f32 (3H,I)  w_hh.f32 (3H,H)
//   b_ih.f32 (3H)  b_hh.f32 (3H)
// oneDNN's gate order is u (= PyTorch z), r, o (= n); the lbr variant has a fourth bias block
// (the recurrent bias of o, PyTorch's b_hn).
//
// Usage:
//   onednn_gru --T 100 --B 1 --I 128 --H 128 --threads 2 --data DIR
//              [--cells reset_after:inference,reset_after:train,reset_before:inference,...]
//              [--min-repeats 5] [--target-seconds 0.5] [--cell-budget 20] [--dump DIR]
//              [--busy-retries 1] [--busy-threshold 0.1] [--spinner-pids PID,PID,...]
//   --threads 0 leaves OpenMP at its default (the runner's "default" thread setting). The processes
//   of --spinner-pids (the busy processes of run.py --contention) are not counted as others in the
//   contention measure: their share of the CPUs is reported apart ("spinner_cpu_share").
//   onednn_gru --gemm 1024 --threads 2     (times dnnl::sgemm 1024^3 instead; prints its GFLOP/s)
// Prints one JSON object on stdout: {"dnnl_version": ..., "cells": [{"convention", "mode",
// "median_ms", "times_ms", "repeats", "warmup_runs", "warmup_ms", "contention"}, ...]}.
// With --dump, writes the first warm-up run's outputs (for run.py's correctness check):
//   y_<conv>.f32 (T,B,H) from inference; dx_<conv>.f32 (T,B,I), dh0_<conv>.f32 (B,H) and
//   dw_hh_<conv>.f32 (3H,H, PyTorch layout) from training, gradients zeroed before that run.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <omp.h>
#include <time.h>
#include <unistd.h>

#include "oneapi/dnnl/dnnl.hpp"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
using dims = memory::dims;

namespace {

struct Options {
    long T = 0, B = 0, I = 0, H = 0;
    int threads = 1;
    std::string data, dump;
    std::vector<std::string> cells = {"reset_after:inference", "reset_after:train",
                                      "reset_before:inference", "reset_before:train"};
    int min_repeats = 5;
    double target_seconds = 0.5, cell_budget = 20.0;
    int busy_retries = 1;
    double busy_threshold = 0.10;
    std::vector<long> spinner_pids;
    long gemm = 0;  // > 0: time dnnl::sgemm of this square size instead of the GRU
};

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--T") o.T = std::stol(next());
        else if (a == "--B") o.B = std::stol(next());
        else if (a == "--I") o.I = std::stol(next());
        else if (a == "--H") o.H = std::stol(next());
        else if (a == "--threads") o.threads = std::stoi(next());
        else if (a == "--data") o.data = next();
        else if (a == "--dump") o.dump = next();
        else if (a == "--cells") o.cells = split(next(), ',');
        else if (a == "--min-repeats") o.min_repeats = std::stoi(next());
        else if (a == "--target-seconds") o.target_seconds = std::stod(next());
        else if (a == "--cell-budget") o.cell_budget = std::stod(next());
        else if (a == "--busy-retries") o.busy_retries = std::stoi(next());
        else if (a == "--busy-threshold") o.busy_threshold = std::stod(next());
        else if (a == "--spinner-pids")
            for (const auto &pid : split(next(), ',')) o.spinner_pids.push_back(std::stol(pid));
        else if (a == "--gemm") o.gemm = std::stol(next());
        else throw std::runtime_error("unknown argument " + a);
    }
    if (o.gemm > 0) return o;
    if (o.T < 1 || o.B < 1 || o.I < 1 || o.H < 1 || o.data.empty())
        throw std::runtime_error("need --T --B --I --H (>= 1) and --data");
    return o;
}

std::vector<float> read_f32(const std::string &path, size_t count) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::vector<float> v(count);
    f.read(reinterpret_cast<char *>(v.data()), static_cast<std::streamsize>(count * sizeof(float)));
    if (static_cast<size_t>(f.gcount()) != count * sizeof(float))
        throw std::runtime_error("short file " + path);
    return v;
}

void write_f32(const std::string &path, const float *p, size_t count) {
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path);
    f.write(reinterpret_cast<const char *>(p), static_cast<std::streamsize>(count * sizeof(float)));
}

void to_memory(const std::vector<float> &src, memory &m) {
    std::memcpy(m.get_data_handle(), src.data(), src.size() * sizeof(float));
}

void zero_memory(memory &m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct CellResult {
    std::string convention, mode;
    std::vector<double> times_ms;
    int warmup_runs = 0;
    double warmup_ms = 0;
    double foreign_cpu_share = -1, steal_share = -1, spinner_cpu_share = -1;  // -1: unknown
    int attempts = 0;
};

// Machine-wide busy and steal seconds (from /proc/stat), this process's CPU seconds and the
// spinners' (from /proc/<pid>/stat): the share of the CPUs that others used while a cell ran, as
// run.py reports it.
struct CpuSnapshot {
    bool ok = false;
    double busy = 0, steal = 0, own = 0, spun = 0;
};

double process_cpu_seconds(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t name_end = stat.rfind(')');
    if (name_end == std::string::npos) return 0;
    std::istringstream fields(stat.substr(name_end + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int k = 3; k <= 15 && (fields >> field); ++k) {  // fields 14 and 15 of proc(5): utime, stime
        if (k == 14) utime = std::stoull(field);
        if (k == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

CpuSnapshot cpu_snapshot(const std::vector<long> &spinner_pids) {
    CpuSnapshot c;
    std::ifstream f("/proc/stat");
    std::string cpu;
    unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (!(f >> cpu) || cpu != "cpu") return c;
    for (int i = 0; i < 8 && (f >> v[i]); ++i) {}
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    c.busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / tick;
    c.steal = static_cast<double>(v[7]) / tick;
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    c.own = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    for (long pid : spinner_pids) c.spun += process_cpu_seconds(pid);
    c.ok = true;
    return c;
}

// The harness's repeat policy (the same as run.py's): untimed warm-up runs, at least 0.25 s of
// them and at least 2 (1 when a run takes over 1 s); then, with t the last warm-up run's time,
// max(min_repeats, ceil(target / t)) timed runs, unless min_repeats runs would take longer than
// the cell budget: then as many as fit in it (at least 1). The share of the CPUs that other
// processes used during the timed runs is measured and reported (see CpuSnapshot).
CellResult measure(const std::function<void()> &run, const std::function<void()> &after_first,
                   const Options &o) {
    CellResult r;
    double t_last = 0, spent = 0;
    while (r.warmup_runs < 1 || (r.warmup_runs < 2 && t_last < 1.0) || spent < 0.25) {
        double t0 = now_s();
        run();
        t_last = now_s() - t0;
        spent += t_last;
        if (r.warmup_runs == 0 && after_first) after_first();
        ++r.warmup_runs;
    }
    r.warmup_ms = spent * 1e3;
    long n = std::max<long>(o.min_repeats, static_cast<long>(std::ceil(o.target_seconds / std::max(t_last, 1e-9))));
    n = std::min<long>(n, 100000);
    if (o.min_repeats * t_last > o.cell_budget)
        n = std::max<long>(1, static_cast<long>(o.cell_budget / t_last));
    // The timed runs; redone (up to busy_retries times) when others used more than busy_threshold
    // of the CPUs meanwhile, keeping the least disturbed attempt (chosen on contention alone).
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double best_share = 1e300;
    std::vector<double> best_times;
    for (int attempt = 0; attempt <= std::max(0, o.busy_retries); ++attempt) {
        std::vector<double> times;
        const CpuSnapshot c0 = cpu_snapshot(o.spinner_pids);
        const double w0 = now_s();
        for (long k = 0; k < n; ++k) {
            double t0 = now_s();
            run();
            times.push_back((now_s() - t0) * 1e3);
        }
        const double wall = now_s() - w0;
        const CpuSnapshot c1 = cpu_snapshot(o.spinner_pids);
        double foreign = -1, steal = -1, spun = -1, share = 0;
        if (c0.ok && c1.ok && wall > 0 && ncpu > 0) {
            foreign = std::max(0.0, (c1.busy - c0.busy) - (c1.own - c0.own) - (c1.spun - c0.spun)) / (wall * ncpu);
            steal = (c1.steal - c0.steal) / (wall * ncpu);
            spun = (c1.spun - c0.spun) / (wall * ncpu);
            share = foreign + steal;
        }
        r.attempts = attempt + 1;
        if (share < best_share) {
            best_share = share;
            best_times = times;
            r.foreign_cpu_share = foreign;
            r.steal_share = steal;
            r.spinner_cpu_share = spun;
        }
        if (share <= o.busy_threshold) break;
    }
    r.times_ms = best_times;
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// PyTorch gate block (r=0, z=1, n=2) of oneDNN gate g (u=0, r=1, o=2).
const int kTorchGate[3] = {1, 0, 2};

struct Problem {
    long T, B, I, H;
    std::vector<float> x, h0, dy, w_ih, w_hh, b_ih, b_hh;
};

template <class Fwd, class Bwd>
void run_convention(const Problem &p, const std::string &conv, bool lbr, bool want_inf,
                    bool want_train, engine &eng, stream &s, const Options &o,
                    std::vector<CellResult> &results) {
    const long T = p.T, B = p.B, I = p.I, H = p.H;
    const long nbias = lbr ? 4 : 3;
    memory::desc src_layer_md({T, B, I}, dt::f32, tag::tnc);
    memory::desc iter_md({1, 1, B, H}, dt::f32, tag::ldnc);
    memory::desc dst_layer_md({T, B, H}, dt::f32, tag::tnc);
    memory::desc wl_user_md({1, 1, I, 3, H}, dt::f32, tag::ldigo);
    memory::desc wi_user_md({1, 1, H, 3, H}, dt::f32, tag::ldigo);
    memory::desc wl_any_md({1, 1, I, 3, H}, dt::f32, tag::any);
    memory::desc wi_any_md({1, 1, H, 3, H}, dt::f32, tag::any);
    memory::desc bias_md({1, 1, nbias, H}, dt::f32, tag::ldgo);

    // User-layout weights (ldigo: [i][gate][h]) and bias (ldgo) from PyTorch's arrays.
    memory wl_user(wl_user_md, eng), wi_user(wi_user_md, eng), bias(bias_md, eng);
    {
        float *wl = static_cast<float *>(wl_user.get_data_handle());
        float *wi = static_cast<float *>(wi_user.get_data_handle());
        float *b = static_cast<float *>(bias.get_data_handle());
        for (int g = 0; g < 3; ++g) {
            const long tg = kTorchGate[g];
            for (long h = 0; h < H; ++h) {
                for (long i = 0; i < I; ++i) wl[(i * 3 + g) * H + h] = p.w_ih[(tg * H + h) * I + i];
                for (long j = 0; j < H; ++j) wi[(j * 3 + g) * H + h] = p.w_hh[(tg * H + h) * H + j];
            }
        }
        for (long h = 0; h < H; ++h) {
            b[0 * H + h] = p.b_ih[1 * H + h] + p.b_hh[1 * H + h];  // u = z
            b[1 * H + h] = p.b_ih[0 * H + h] + p.b_hh[0 * H + h];  // r
            if (lbr) {
                b[2 * H + h] = p.b_ih[2 * H + h];  // o: input part
                b[3 * H + h] = p.b_hh[2 * H + h];  // o: recurrent part, inside r * (...)
            } else {
                b[2 * H + h] = p.b_ih[2 * H + h] + p.b_hh[2 * H + h];
            }
        }
    }
    memory src_layer(src_layer_md, eng), src_iter(iter_md, eng);
    memory dst_layer(dst_layer_md, eng), dst_iter(iter_md, eng);
    to_memory(p.x, src_layer);
    to_memory(p.h0, src_iter);

    auto reorder_to = [&](memory &user, const memory::desc &md) {
        if (md == user.get_desc()) return user;
        memory m(md, eng);
        reorder(user, m).execute(s, user, m);
        s.wait();
        return m;
    };
    const auto dir = rnn_direction::unidirectional_left2right;

    if (want_inf) {
        typename Fwd::primitive_desc pd(eng, prop_kind::forward_inference, dir, src_layer_md, iter_md,
                                          wl_any_md, wi_any_md, bias_md, dst_layer_md, iter_md);
        memory wl = reorder_to(wl_user, pd.weights_layer_desc());
        memory wi = reorder_to(wi_user, pd.weights_iter_desc());
        Fwd prim(pd);
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_SRC_LAYER, src_layer}, {DNNL_ARG_SRC_ITER, src_iter},
            {DNNL_ARG_WEIGHTS_LAYER, wl}, {DNNL_ARG_WEIGHTS_ITER, wi},
            {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST_LAYER, dst_layer}, {DNNL_ARG_DST_ITER, dst_iter}};
        if (pd.workspace_desc().get_size() != 0)
            args.insert({DNNL_ARG_WORKSPACE, memory(pd.workspace_desc(), eng)});
        auto run = [&]() { prim.execute(s, args); s.wait(); };
        auto dump = [&]() {
            if (o.dump.empty()) return;
            write_f32(o.dump + "/y_" + conv + ".f32", static_cast<float *>(dst_layer.get_data_handle()), T * B * H);
        };
        CellResult r = measure(run, dump, o);
        r.convention = conv;
        r.mode = "inference";
        results.push_back(r);
    }

    if (want_train) {
        typename Fwd::primitive_desc fpd(eng, prop_kind::forward_training, dir, src_layer_md, iter_md,
                                           wl_any_md, wi_any_md, bias_md, dst_layer_md, iter_md);
        typename Bwd::primitive_desc bpd(eng, prop_kind::backward, dir, src_layer_md, iter_md, wl_any_md,
                                           wi_any_md, bias_md, dst_layer_md, iter_md, src_layer_md, iter_md,
                                           wl_any_md, wi_any_md, bias_md, dst_layer_md, iter_md, fpd);
        memory fwl = reorder_to(wl_user, fpd.weights_layer_desc());
        memory fwi = reorder_to(wi_user, fpd.weights_iter_desc());
        memory bwl = reorder_to(wl_user, bpd.weights_layer_desc());
        memory bwi = reorder_to(wi_user, bpd.weights_iter_desc());
        memory workspace(fpd.workspace_desc(), eng);
        memory diff_src_layer(src_layer_md, eng), diff_src_iter(iter_md, eng);
        memory diff_dst_layer(dst_layer_md, eng), diff_dst_iter(iter_md, eng);
        memory diff_wl(bpd.diff_weights_layer_desc(), eng), diff_wi(bpd.diff_weights_iter_desc(), eng);
        memory diff_bias(bpd.diff_bias_desc(), eng);
        to_memory(p.dy, diff_dst_layer);
        zero_memory(diff_dst_iter);  // no gradient on h_n, as for the other implementations
        // Gradients in the user layout (ldigo), as fastgru and PyTorch hand them back.
        const bool wl_reorder = !(diff_wl.get_desc() == wl_user_md);
        const bool wi_reorder = !(diff_wi.get_desc() == wi_user_md);
        memory diff_wl_user = wl_reorder ? memory(wl_user_md, eng) : diff_wl;
        memory diff_wi_user = wi_reorder ? memory(wi_user_md, eng) : diff_wi;
        Fwd fwd(fpd);
        Bwd bwd(bpd);
        reorder r_wl, r_wi;
        if (wl_reorder) r_wl = reorder(diff_wl, diff_wl_user);
        if (wi_reorder) r_wi = reorder(diff_wi, diff_wi_user);
        std::unordered_map<int, memory> fargs = {
            {DNNL_ARG_SRC_LAYER, src_layer}, {DNNL_ARG_SRC_ITER, src_iter},
            {DNNL_ARG_WEIGHTS_LAYER, fwl}, {DNNL_ARG_WEIGHTS_ITER, fwi}, {DNNL_ARG_BIAS, bias},
            {DNNL_ARG_DST_LAYER, dst_layer}, {DNNL_ARG_DST_ITER, dst_iter}, {DNNL_ARG_WORKSPACE, workspace}};
        std::unordered_map<int, memory> bargs = {
            {DNNL_ARG_SRC_LAYER, src_layer}, {DNNL_ARG_SRC_ITER, src_iter},
            {DNNL_ARG_WEIGHTS_LAYER, bwl}, {DNNL_ARG_WEIGHTS_ITER, bwi}, {DNNL_ARG_BIAS, bias},
            {DNNL_ARG_DST_LAYER, dst_layer}, {DNNL_ARG_DST_ITER, dst_iter},
            {DNNL_ARG_DIFF_DST_LAYER, diff_dst_layer}, {DNNL_ARG_DIFF_DST_ITER, diff_dst_iter},
            {DNNL_ARG_WORKSPACE, workspace},
            {DNNL_ARG_DIFF_SRC_LAYER, diff_src_layer}, {DNNL_ARG_DIFF_SRC_ITER, diff_src_iter},
            {DNNL_ARG_DIFF_WEIGHTS_LAYER, diff_wl}, {DNNL_ARG_DIFF_WEIGHTS_ITER, diff_wi},
            {DNNL_ARG_DIFF_BIAS, diff_bias}};
        zero_memory(diff_wl);
        zero_memory(diff_wi);
        zero_memory(diff_bias);
        auto run = [&]() {
            fwd.execute(s, fargs);
            bwd.execute(s, bargs);
            if (wl_reorder) r_wl.execute(s, diff_wl, diff_wl_user);
            if (wi_reorder) r_wi.execute(s, diff_wi, diff_wi_user);
            s.wait();
        };
        auto dump = [&]() {
            if (o.dump.empty()) return;
            write_f32(o.dump + "/dx_" + conv + ".f32", static_cast<float *>(diff_src_layer.get_data_handle()), T * B * I);
            write_f32(o.dump + "/dh0_" + conv + ".f32", static_cast<float *>(diff_src_iter.get_data_handle()), B * H);
            const float *dwi = static_cast<const float *>(diff_wi_user.get_data_handle());
            std::vector<float> dw_hh(3 * H * H);
            for (int g = 0; g < 3; ++g)
                for (long h = 0; h < H; ++h)
                    for (long j = 0; j < H; ++j)
                        dw_hh[(kTorchGate[g] * H + h) * H + j] = dwi[(j * 3 + g) * H + h];
            write_f32(o.dump + "/dw_hh_" + conv + ".f32", dw_hh.data(), dw_hh.size());
        };
        CellResult r = measure(run, dump, o);
        r.convention = conv;
        r.mode = "train";
        results.push_back(r);
    }
}

// The float32 matrix-product rate of oneDNN's own GEMM (dnnl::sgemm, row-major N x N @ N x N).
void run_gemm(const Options &o) {
    const long n = o.gemm;
    std::vector<float> a(n * n), b(n * n), c(n * n);
    for (long i = 0; i < n * n; ++i) {
        a[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
        b[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
    }
    auto run = [&]() {
        dnnl::sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    };
    CellResult r = measure(run, nullptr, o);
    const double med = median(r.times_ms);
    std::printf("{\"gemm\": %ld, \"median_ms\": %.6g, \"gflops\": %.6g, \"repeats\": %zu, \"threads\": %d,"
                " \"contention\": {\"foreign_cpu_share\": %.4f, \"steal_share\": %.4f, \"attempts\": %d}}\n",
                n, med, 2.0 * n * n * n / (med * 1e-3) / 1e9, r.times_ms.size(), o.threads, r.foreign_cpu_share,
                r.steal_share, r.attempts);
}

void print_json(const std::vector<CellResult> &results, const Options &o) {
    const dnnl_version_t *v = dnnl_version();
    std::printf("{\"dnnl_version\": \"%d.%d.%d\", \"dnnl_hash\": \"%s\", \"cpu_runtime\": %d, \"threads\": %d,"
                " \"omp_max_threads\": %d, \"cells\": [",
                v->major, v->minor, v->patch, v->hash, v->cpu_runtime, o.threads, omp_get_max_threads());
    for (size_t k = 0; k < results.size(); ++k) {
        const CellResult &r = results[k];
        std::printf("%s{\"convention\": \"%s\", \"mode\": \"%s\", \"median_ms\": %.6g, \"repeats\": %zu,"
                    " \"warmup_runs\": %d, \"warmup_ms\": %.6g, \"contention\": {",
                    k ? ", " : "", r.convention.c_str(), r.mode.c_str(), median(r.times_ms), r.times_ms.size(),
                    r.warmup_runs, r.warmup_ms);
        if (r.foreign_cpu_share >= 0)
            std::printf("\"foreign_cpu_share\": %.4f, \"steal_share\": %.4f, \"attempts\": %d",
                        r.foreign_cpu_share, r.steal_share, r.attempts);
        if (r.foreign_cpu_share >= 0 && !o.spinner_pids.empty())
            std::printf(", \"spinners\": %zu, \"spinner_cpu_share\": %.4f", o.spinner_pids.size(),
                        r.spinner_cpu_share);
        std::printf("}, \"times_ms\": [");
        for (size_t i = 0; i < r.times_ms.size(); ++i) std::printf("%s%.6g", i ? ", " : "", r.times_ms[i]);
        std::printf("]}");
    }
    std::printf("]}\n");
}

}  // namespace

int main(int argc, char **argv) {
    try {
        Options o = parse(argc, argv);
        if (o.threads > 0) omp_set_num_threads(o.threads);
        if (o.gemm > 0) {
            run_gemm(o);
            return 0;
        }
        Problem p;
        p.T = o.T;
        p.B = o.B;
        p.I = o.I;
        p.H = o.H;
        const std::string d = o.data + "/";
        p.x = read_f32(d + "x.f32", o.T * o.B * o.I);
        p.h0 = read_f32(d + "h0.f32", o.B * o.H);
        p.dy = read_f32(d + "dy.f32", o.T * o.B * o.H);
        p.w_ih = read_f32(d + "w_ih.f32", 3 * o.H * o.I);
        p.w_hh = read_f32(d + "w_hh.f32", 3 * o.H * o.H);
        p.b_ih = read_f32(d + "b_ih.f32", 3 * o.H);
        p.b_hh = read_f32(d + "b_hh.f32", 3 * o.H);

        std::map<std::string, bool> want;
        for (const auto &c : o.cells) want[c] = true;
        engine eng(engine::kind::cpu, 0);
        stream s(eng);
        std::vector<CellResult> results;
        if (want["reset_after:inference"] || want["reset_after:train"])
            run_convention<lbr_gru_forward, lbr_gru_backward>(
                    p, "reset_after", true, want["reset_after:inference"], want["reset_after:train"], eng, s, o,
                    results);
        if (want["reset_before:inference"] || want["reset_before:train"])
            run_convention<gru_forward, gru_backward>(
                    p, "reset_before", false, want["reset_before:inference"], want["reset_before:train"], eng, s,
                    o, results);
        print_json(results, o);
    } catch (const dnnl::error &e) {
        std::fprintf(stderr, "oneDNN error: %s (status %d)\n", e.what(), static_cast<int>(e.status));
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
