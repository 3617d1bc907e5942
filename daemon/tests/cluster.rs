//! A real cluster: four `shieldx node` processes on 127.0.0.1, driven over
//! the gRPC API. Commits under load, a backup killed with SIGKILL and
//! restarted (it resumes from its disk and catches up), the primary killed
//! (a view change elects another), and every node's committed log compared
//! block by block. Bounded in time; processes and directories are cleaned up
//! even when an assertion fails.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shieldx_daemon::node::api::{self, AuthedClient};
use shieldx_daemon::node::local::ApiTokens;
use shieldx_daemon::proto::{
    GetBlockRequest, GetStateRequest, SecurityEvent, StateResponse, SubmitEventsRequest,
};

const N: u16 = 4;

struct Cluster {
    dir: PathBuf,
    tokens: ApiTokens,
    base_port: u16,
    children: Vec<Option<Child>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for i in 0..N {
                let log = self.dir.join(format!("node{i}.log"));
                if let Ok(text) = std::fs::read_to_string(&log) {
                    for line in text
                        .lines()
                        .filter(|l| {
                            l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked")
                        })
                        .take(20)
                    {
                        eprintln!("node{i}: {line}");
                    }
                }
            }
            for i in 0..N {
                let log = self.dir.join(format!("node{i}.log"));
                if let Ok(text) = std::fs::read_to_string(&log) {
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("--- node{i} log (last lines, newest first) ---");
                    for line in tail {
                        eprintln!("{line}");
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ports_free(base: u16) -> bool {
    (0..N).all(|i| {
        [0, 100, 200]
            .iter()
            .all(|offset| TcpListener::bind(("127.0.0.1", base + offset + i)).is_ok())
    })
}

fn shieldx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shieldx"))
}

impl Cluster {
    fn new() -> Cluster {
        let dir = std::env::temp_dir().join(format!("shieldx-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut base_port = 21_000 + (std::process::id() % 400) as u16 * 10;
        while !ports_free(base_port) {
            base_port += 7;
            assert!(base_port < 40_000, "no free ports");
        }
        let status = shieldx()
            .args(["node", "testnet", "--validators", "4", "--base-port"])
            .arg(base_port.to_string())
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run shieldx node testnet");
        assert!(status.success(), "testnet generation failed");
        // Short timeouts, so that the view change after a primary crash
        // happens within the test's bounds.
        for i in 0..N {
            let path = dir.join(format!("node{i}/config.toml"));
            let text = std::fs::read_to_string(&path).expect("config");
            let text = text
                .replace("request_timeout_ms = 2000", "request_timeout_ms = 1000")
                .replace("level = \"info\"", "level = \"info,shieldx_daemon=debug\"");
            std::fs::write(&path, text).expect("config");
        }
        let tokens = ApiTokens::load(&dir.join("api-tokens.toml")).expect("tokens");
        let mut cluster = Cluster {
            tokens,
            dir,
            base_port,
            children: (0..N).map(|_| None).collect(),
        };
        for i in 0..N {
            cluster.start(i);
        }
        cluster
    }

    fn start(&mut self, i: u16) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{i}.log")))
            .expect("log file");
        let child = shieldx()
            .args(["node", "start", "--config"])
            .arg(self.dir.join(format!("node{i}/config.toml")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a node");
        self.children[usize::from(i)] = Some(child);
    }

    fn kill9(&mut self, i: u16) {
        let mut child = self.children[usize::from(i)].take().expect("running");
        // Child::kill sends SIGKILL: no chance to flush anything.
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    fn api(&self, i: u16) -> String {
        format!("http://127.0.0.1:{}", self.base_port + 100 + i)
    }

    fn metrics(&self, i: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base_port + 200 + i))
    }

    fn home(&self, i: u16) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }
}

async fn client(url: &str, token: &str, deadline: Instant) -> AuthedClient {
    loop {
        if let Ok(client) = api::connect(url, token).await {
            return client;
        }
        assert!(Instant::now() < deadline, "{url} never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn state(cluster: &Cluster, i: u16) -> Option<StateResponse> {
    let mut client = api::connect(&cluster.api(i), &cluster.tokens.read)
        .await
        .ok()?;
    client
        .get_state(GetStateRequest::default())
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

fn events(tag: &str, count: usize) -> SubmitEventsRequest {
    SubmitEventsRequest {
        events: (0..count)
            .map(|k| SecurityEvent {
                id: format!("{tag}-{k}"),
                ts: 1_767_225_600_000 + k as u64,
                source: format!("10.0.0.{}", k % 250 + 1),
                sensor: "cluster-test".into(),
                kind: "http".into(),
                payload: if k % 5 == 0 {
                    b"GET /search?q=1'%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nhost: shop\r\n\r\n".to_vec()
                } else {
                    format!("GET /products/{k} HTTP/1.1\r\nhost: shop\r\n\r\n").into_bytes()
                },
                headers: Default::default(),
            })
            .collect(),
    }
}

/// Submits `calls` SubmitEvents calls spread over `nodes`, concurrently;
/// returns the heights they committed at.
async fn load(cluster: &Cluster, nodes: &[u16], tag: &str, calls: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for call in 0..calls {
        let node = nodes[call % nodes.len()];
        let url = cluster.api(node);
        let token = cluster.tokens.submit.clone();
        let request = events(&format!("{tag}-{call}"), 8);
        tasks.push(tokio::spawn(async move {
            let mut client = client(&url, &token, deadline).await;
            loop {
                match client.submit_events(request.clone()).await {
                    Ok(response) => return response.into_inner(),
                    Err(status) => {
                        assert!(
                            Instant::now() < deadline,
                            "submission never committed: {status}"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }
    let mut heights = Vec::new();
    for task in tasks {
        let response = task.await.expect("submitter");
        assert!(
            response.applied,
            "committed but rejected: {}",
            response.rejection
        );
        assert_eq!(response.reply_signature.len(), 128);
        heights.push(response.height);
    }
    heights
}

async fn wait_height(cluster: &Cluster, i: u16, height: u64, within: Duration) -> StateResponse {
    let deadline = Instant::now() + within;
    loop {
        if let Some(state) = state(cluster, i).await
            && state.height >= height
        {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "node {i} did not reach height {height}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn http_get(address: SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("metrics port");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

fn records_on_disk(home: &Path) -> bool {
    home.join("data/consensus.redb").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_commit_survive_kill_9_and_a_primary_failure_and_agree() {
    let mut cluster = Cluster::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..N {
        client(&cluster.api(i), &cluster.tokens.read, deadline).await;
    }

    // The API is authenticated: no token, a wrong token, a token of the
    // wrong role.
    let mut anonymous = shieldx_daemon::proto::client_client::ClientClient::connect(cluster.api(0))
        .await
        .expect("connect");
    assert_eq!(
        anonymous
            .get_state(GetStateRequest::default())
            .await
            .expect_err("no token")
            .code(),
        tonic::Code::Unauthenticated
    );
    let mut wrong = client(&cluster.api(0), "not-a-token", deadline).await;
    assert_eq!(
        wrong
            .get_state(GetStateRequest::default())
            .await
            .expect_err("unknown token")
            .code(),
        tonic::Code::Unauthenticated
    );
    let mut reader = client(&cluster.api(0), &cluster.tokens.read, deadline).await;
    assert_eq!(
        reader
            .submit_events(events("denied", 1))
            .await
            .expect_err("a reader may not submit")
            .code(),
        tonic::Code::PermissionDenied
    );

    // Commits under load, submitted to every node.
    let heights = load(&cluster, &[0, 1, 2, 3], "warmup", 200).await;
    let top = heights.iter().copied().max().expect("heights");
    assert!(top >= 1);
    for i in 0..N {
        wait_height(&cluster, i, top, Duration::from_secs(30)).await;
    }
    let metrics = http_get(cluster.metrics(0), "/metrics");
    assert!(metrics.contains("shieldx_consensus_height"), "{metrics}");
    assert!(metrics.contains("shieldx_requests_committed_total"));
    // The node's saturation: its core loop has worked, and said so.
    let busy: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shieldx_core_loop_busy_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("core loop busy seconds exposed: {metrics}"));
    assert!(busy > 0.0, "{busy}");
    assert!(http_get(cluster.metrics(0), "/healthz").starts_with("HTTP/1.0 200"));

    // A backup is killed with SIGKILL, the others go on, and it comes back.
    let primary = state(&cluster, 0).await.expect("state").primary as u16;
    let backup = (primary + 1) % N;
    cluster.kill9(backup);
    let others: Vec<u16> = (0..N).filter(|i| *i != backup).collect();
    let heights = load(&cluster, &others, "backup-down", 100).await;
    let top = heights.into_iter().max().expect("heights");
    assert!(records_on_disk(&cluster.home(backup)));
    cluster.start(backup);
    let caught_up = wait_height(&cluster, backup, top, Duration::from_secs(60)).await;
    assert!(caught_up.height >= top);

    // The primary is killed: a view change elects another and work goes on.
    let primary = state(&cluster, others[0]).await.expect("state").primary as u16;
    cluster.kill9(primary);
    let survivors: Vec<u16> = (0..N).filter(|i| *i != primary).collect();
    let heights = load(&cluster, &survivors, "primary-down", 60).await;
    let top = heights.into_iter().max().expect("heights");
    let after = state(&cluster, survivors[0]).await.expect("state");
    assert!(after.view >= 1, "no view change after the primary died");
    assert_ne!(after.primary as u16, primary);
    cluster.start(primary);
    wait_height(&cluster, primary, top, Duration::from_secs(60)).await;

    // Agreement, block by block, through the API. A node that caught up by
    // state transfer may lack blocks below its snapshot; every height must
    // be held by a quorum (3 of 4) and all holders must agree.
    let mut digests = Vec::new();
    for i in 0..N {
        let mut client = client(
            &cluster.api(i),
            &cluster.tokens.read,
            deadline + Duration::from_secs(60),
        )
        .await;
        let mut mine = Vec::new();
        for height in 1..=top {
            let block = client
                .get_block(GetBlockRequest { height })
                .await
                .ok()
                .map(|r| r.into_inner());
            mine.push(block.map(|b| (b.digest, b.state_digest)));
        }
        digests.push(mine);
    }
    for height in 0..top as usize {
        let held: Vec<&(String, String)> =
            digests.iter().filter_map(|d| d[height].as_ref()).collect();
        assert!(
            held.len() >= 3,
            "height {} is held by {} node(s) only",
            height + 1,
            held.len()
        );
        assert!(
            held.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree at height {}",
            height + 1
        );
    }
    drop(cluster);
}
