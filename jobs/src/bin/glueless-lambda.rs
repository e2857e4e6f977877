//! `glueless-lambda`: the SQS-triggered Lambda function (packaged as `bootstrap`); see
//! `glueless_jobs::runtime::lambda` and docs/operations.md.

fn main() {
    std::process::exit(glueless_jobs::runtime::lambda::main());
}
