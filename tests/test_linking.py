"""What the installed package offers C, C++ and Cython builds, and `fastgru info`."""

import os
import subprocess
import sys

import fastgru


def test_installed_headers_library_and_cmake_package():
    assert os.path.isfile(os.path.join(fastgru.get_include(), "fastgru", "fastgru.h"))
    assert os.path.isfile(os.path.join(fastgru.get_include(), "fastgru", "gru.h"))
    assert os.path.isfile(os.path.join(fastgru.get_library_dir(), "libfastgru.a"))
    for name in ("fastgruConfig.cmake", "fastgruConfigVersion.cmake", "fastgruTargets.cmake"):
        assert os.path.isfile(os.path.join(fastgru.get_cmake_dir(), name))
    assert os.path.isfile(os.path.join(os.path.dirname(fastgru.__file__), "capi.pxd"))


def test_cmake_dir_option_prints_only_the_directory():
    out = subprocess.run([sys.executable, "-m", "fastgru", "--cmake-dir"], capture_output=True, text=True, check=True)
    assert out.stdout == fastgru.get_cmake_dir() + "\n"


def test_info_names_the_openmp_runtime_and_cmake_dir():
    report = fastgru.info()
    library = report["openmp"].split(" (OpenMP ")[0]
    assert "gomp" in os.path.basename(library) or "omp" in os.path.basename(library)
    assert os.path.isfile(library), report["openmp"]
    assert report["openmp"].endswith(")") and "(OpenMP " in report["openmp"]
    assert report["cmake_dir"] == fastgru.get_cmake_dir()
    out = subprocess.run([sys.executable, "-m", "fastgru", "info"], capture_output=True, text=True, check=True)
    assert f"cmake_dir: {fastgru.get_cmake_dir()}" in out.stdout and "openmp: " in out.stdout


def test_missing_command_is_a_clear_usage_error():
    out = subprocess.run([sys.executable, "-m", "fastgru"], capture_output=True, text=True)
    assert out.returncode == 2 and "a command is required (or --cmake-dir)" in out.stderr
