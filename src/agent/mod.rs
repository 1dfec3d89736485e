//! The steps inside an attempt pod: install-binary, checkout, agent, validate.
//! PLACEHOLDER (spine issue): the attempt-runtime issue implements them.

pub mod cli;
