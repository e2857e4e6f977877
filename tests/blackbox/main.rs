//! Black-box tests of the `glueless` binary and of the ports' adapters: each test runs in its
//! own temporary folder (and its own bucket, queue or database) and checks what a user sees.

mod acceptance;
#[cfg(feature = "lambda")]
mod aws_runtime;
#[cfg(feature = "lambda")]
mod dashboard;
mod docs;
#[cfg(feature = "aws")]
mod dynamodb;
mod evolution;
mod golden;
mod hostile;
mod infer;
mod logs;
mod pipeline;
#[cfg(feature = "postgres")]
mod postgres;
mod redshift;
mod reliability;
mod s3;
#[cfg(feature = "aws")]
mod sns;
mod startup;
mod support;
mod transform;
