"""Builds the Cython client in place against the installed fastgru (its .pxd, headers and static
library): `python tests/cython_client/build.py`. Needs Cython, setuptools and a C/C++ compiler."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

import fastgru

os.chdir(os.path.dirname(os.path.abspath(__file__)))
client = Extension(
    "fastgru_cython_client",
    ["fastgru_cython_client.pyx"],
    include_dirs=[fastgru.get_include()],
    # The core is a static C++ library using OpenMP: link it with the C++ runtime and OpenMP.
    extra_objects=[os.path.join(fastgru.get_library_dir(), "libfastgru.a")],
    libraries=["stdc++", "m"],
    extra_link_args=["-fopenmp"],
)
setup(name="fastgru_cython_client", ext_modules=cythonize([client]), script_args=["build_ext", "--inplace"])
