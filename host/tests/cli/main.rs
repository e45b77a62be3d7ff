//! The `antenna` binary and library from the outside, one test binary: crash recovery with
//! `kill -9`, a plugin written in another language, `antenna plugin new`.

mod compile_bounds;
mod crash;
mod other_language;
mod scaffold;
