//! The `antenna` binary and library from the outside, one test binary: crash recovery with
//! `kill -9`, decode bombs against the real process's memory, a plugin written in another
//! language, `antenna plugin new`.

mod compile_bounds;
mod crash;
mod decode_bombs;
mod other_language;
mod scaffold;
mod start_errors;
