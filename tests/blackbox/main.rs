//! Black-box tests of the `glueless` binary: each test runs the real executable in its own
//! temporary folder and checks exit codes, the JSON report, and the files it wrote.

mod s3;
mod support;
mod transform;
