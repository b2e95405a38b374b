//! The demo upstream of `make run`: answers every request with a JSON echo of it.

use std::net::SocketAddr;

use clap::Parser;

/// Echo upstream for local meshguard runs.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "meshguard-echo listening on http://{}",
        listener.local_addr()?
    );
    tokio::select! {
        () = meshguard_dev::echo::serve(listener) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("meshguard-echo stopped"),
    }
    Ok(())
}
