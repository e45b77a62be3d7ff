//! The `antenna` binary; the commands are in the library's `cli` module.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    antenna::cli::run().await
}
