//! Starts a private `redis-server` on a free loopback port for tests.
//!
//! Each server runs in its own temporary directory with persistence off, is ready (replies to
//! PING) when `start` returns, and is killed when dropped. `stop` and `restart` keep the port,
//! for outage tests. The binary is `$REDIS_SERVER_BIN`, else `redis-server` on `PATH`.
//! [`RedisCluster`] and [`RedisSentinel`] build the two other deployments from the same
//! processes; they need `redis-cli` on `PATH` (or `$REDIS_CLI_BIN`) for cluster creation.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(10);

fn redis_server_bin() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

fn redis_cli_bin() -> PathBuf {
    std::env::var_os("REDIS_CLI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-cli"))
}

/// A `redis-server` process owned by the test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    extra_args: Vec<String>,
    /// Written to `redis.conf` in `dir` and passed first, when set.
    config_text: Option<String>,
}

impl RedisServer {
    /// Starts a standalone server on a free port.
    pub fn start() -> io::Result<RedisServer> {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments (for example
    /// `["--cluster-enabled", "yes"]`). Retries on another port when the chosen one was taken.
    pub fn start_with_args(extra_args: &[&str]) -> io::Result<RedisServer> {
        Self::start_with_config(None, extra_args)
    }

    /// Starts a server whose configuration file contains `config_text` (a Sentinel needs one it
    /// can rewrite), followed by extra arguments.
    pub fn start_with_config(
        config_text: Option<&str>,
        extra_args: &[&str],
    ) -> io::Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("meshguard-redis-")
            .tempdir()?;
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            config_text: config_text.map(str::to_owned),
        };
        let mut last_error = None;
        for _ in 0..5 {
            server.port = crate::free_port()?;
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Returns the server's working directory, which contains its log file `redis.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Freezes the server with SIGSTOP: connections stay open but no reply comes, like a
    /// server stuck on a slow command.
    pub fn pause(&self) -> io::Result<()> {
        self.signal("-STOP")
    }

    /// Resumes a server frozen by [`RedisServer::pause`].
    pub fn resume(&self) -> io::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> io::Result<()> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| io::Error::other("redis-server is not running"))?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill {signal} failed with {status}"
            )))
        }
    }

    /// Starts the server again on the same port, with empty data. Waits up to ten seconds for
    /// the port, which the stopped process may still hold for a moment.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn spawn_and_wait(&mut self) -> io::Result<()> {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new(redis_server_bin());
        if let Some(text) = &self.config_text {
            let file = self.dir.path().join("redis.conf");
            std::fs::write(&file, text)?;
            command.arg(file);
        }
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("failed to run {}: {error}", redis_server_bin().display()),
            )
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ping(self.port).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(io::Error::other(format!(
                        "redis-server on port {} exited with {status}: {}",
                        self.port,
                        log_text.lines().last().unwrap_or("")
                    )));
                }
            }
            if Instant::now() >= deadline {
                self.stop()?;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("redis-server on port {} did not answer PING", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused process still dies of SIGKILL.
        let _ = self.stop();
    }
}

/// Sends one command as a RESP array and returns the first reply line without its type byte
/// and line end (`PONG` for `+PONG`). Replies of several lines return only the first.
pub fn command(port: u16, args: &[&str]) -> io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let line = line.trim_end();
    if let Some(error) = line.strip_prefix('-') {
        return Err(io::Error::other(format!("redis replied {error}")));
    }
    Ok(line.get(1..).unwrap_or("").to_owned())
}

/// Returns Ok when the server on `port` replies PONG to PING.
pub fn ping(port: u16) -> io::Result<()> {
    match command(port, &["PING"])?.as_str() {
        "PONG" => Ok(()),
        other => Err(io::Error::other(format!("unexpected PING reply {other:?}"))),
    }
}

/// A Redis Cluster of masters without replicas, each a [`RedisServer`] in cluster mode.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3, as `redis-cli --cluster create` requires), assigns
    /// the slots and waits until every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> io::Result<RedisCluster> {
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            // The cluster bus listens on port + 10000, so a free client port is not enough.
            // start_with_args retries with a new port when the bus port is taken.
            nodes.push(RedisServer::start_with_args(&[
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
            ])?);
        }
        let mut create = Command::new(redis_cli_bin());
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&output.stdout)
            )));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in &nodes {
            loop {
                let info = cluster_info(node.port()).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "cluster node {} never reported cluster_state:ok",
                            node.port()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(RedisCluster { nodes })
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`, the URL form meshguard-ratelimit reads.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}

fn cluster_info(port: u16) -> io::Result<String> {
    let output = Command::new(redis_cli_bin())
        .args(["-p", &port.to_string(), "cluster", "info"])
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A master [`RedisServer`] watched by one Sentinel under the name `mymaster`, optionally with
/// one replica the Sentinel can promote.
pub struct RedisSentinel {
    pub master: RedisServer,
    pub replica: Option<RedisServer>,
    pub sentinel: RedisServer,
}

impl RedisSentinel {
    pub const MASTER_NAME: &'static str = "mymaster";

    /// Starts a master and a Sentinel watching it.
    pub fn start() -> io::Result<RedisSentinel> {
        Self::start_inner(false)
    }

    /// Starts a master, a replica of it, and a Sentinel that fails over to the replica about a
    /// second after the master stops replying.
    pub fn start_with_replica() -> io::Result<RedisSentinel> {
        Self::start_inner(true)
    }

    fn start_inner(with_replica: bool) -> io::Result<RedisSentinel> {
        let master = RedisServer::start()?;
        let replica = if with_replica {
            let master_port = master.port().to_string();
            let replica =
                RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &master_port])?;
            wait_for_replication(master.port())?;
            Some(replica)
        } else {
            None
        };
        let config_text = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n",
            name = Self::MASTER_NAME,
            port = master.port()
        );
        let sentinel = RedisServer::start_with_config(Some(&config_text), &["--sentinel"])?;
        Ok(RedisSentinel {
            master,
            replica,
            sentinel,
        })
    }

    /// `redis+sentinel://127.0.0.1:PORT/mymaster`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}",
            self.sentinel.port(),
            Self::MASTER_NAME
        )
    }
}

/// Waits until the master on `port` reports a connected replica.
fn wait_for_replication(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let output = Command::new(redis_cli_bin())
            .args(["-p", &port.to_string(), "info", "replication"])
            .stdin(Stdio::null())
            .output()?;
        if String::from_utf8_lossy(&output.stdout).contains("connected_slaves:1") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no replica connected to the master on port {port}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
