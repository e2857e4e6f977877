//! The AWS runtime's entry points around the shared pipeline:
//!
//! - [`dispatch`]: a batch of SQS messages → per-file decisions → one verdict per message;
//! - `worker` (feature `aws`): `glueless worker`, a long-polling SQS consumer;
//! - [`task`]: `glueless task`, the one large file an ECS task was started for (or any one
//!   object, run by hand);
//! - `lambda` (feature `lambda`): the Lambda function `glueless-lambda` (`bootstrap`).

pub mod dispatch;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod task;
#[cfg(feature = "aws")]
pub mod worker;
