//! What a node takes from the machine it runs on: its network, its wall
//! clock and its entropy.
//!
//! A production node uses [`Host::os`]: tokio TCP (with `TCP_NODELAY`), the
//! system clock and the OS random source. The deterministic daemon tests
//! (`daemon/tests/turmoil_cluster.rs`) hand the same node code a simulated
//! network, the simulation's clock and a seeded generator, so one seed
//! replays the daemon's network code exactly. Monotonic time is not part of
//! the host: every timer, deadline and latency in the node reads
//! `tokio::time`, which a paused runtime (turmoil's) drives.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper_util::rt::TokioIo;
use rand::SeedableRng as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A byte stream a [`Connection`] can carry.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One accepted or dialled connection, whatever network carries it.
pub struct Connection(Box<dyn Io>);

impl Connection {
    /// Wraps a byte stream.
    pub fn new(io: impl Io) -> Connection {
        Connection(Box::new(io))
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) {}
}

/// A bound listener.
pub trait Listener: Send + Sync + 'static {
    /// Waits for the next connection.
    fn accept(self: Arc<Self>) -> BoxFuture<io::Result<Connection>>;
}

/// The connections a [`Listener`] accepts, as a stream (what tonic serves).
pub struct Incoming {
    listener: Arc<dyn Listener>,
    pending: Option<BoxFuture<io::Result<Connection>>>,
}

impl Incoming {
    /// The stream of `listener`'s connections.
    pub fn new(listener: Arc<dyn Listener>) -> Incoming {
        Incoming {
            listener,
            pending: None,
        }
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Incoming")
    }
}

impl Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let pending = this
            .pending
            .get_or_insert_with(|| this.listener.clone().accept());
        match pending.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.pending = None;
                Poll::Ready(Some(result))
            }
        }
    }
}

/// The network a node listens and dials on.
pub trait Network: Send + Sync + 'static {
    /// Listens on `address`; returns the listener and the bound address.
    fn listen(&self, address: SocketAddr) -> BoxFuture<io::Result<(Incoming, SocketAddr)>>;
    /// Dials `host:port`.
    fn dial(&self, host: String, port: u16) -> BoxFuture<io::Result<Connection>>;
}

/// The operating system's TCP stack, through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsNetwork;

struct OsListener(tokio::net::TcpListener);

impl Listener for OsListener {
    fn accept(self: Arc<Self>) -> BoxFuture<io::Result<Connection>> {
        Box::pin(async move {
            let (stream, _) = self.0.accept().await?;
            // `serve_with_incoming` does not set it; small consensus
            // messages would otherwise wait for Nagle.
            stream.set_nodelay(true)?;
            Ok(Connection::new(stream))
        })
    }
}

impl Network for OsNetwork {
    fn listen(&self, address: SocketAddr) -> BoxFuture<io::Result<(Incoming, SocketAddr)>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(address).await?;
            let bound = listener.local_addr()?;
            Ok((Incoming::new(Arc::new(OsListener(listener))), bound))
        })
    }

    fn dial(&self, host: String, port: u16) -> BoxFuture<io::Result<Connection>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Connection::new(stream))
        })
    }
}

/// Wall-clock time, for what must keep increasing across restarts (request
/// ids of heartbeats and gateway submissions) and for event timestamps.
pub trait WallClock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsClock;

impl WallClock for OsClock {
    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Randomness for transport nonces and backoff jitter (never for keys:
/// those are made by `node init`).
pub trait Entropy: Send + Sync + 'static {
    /// Fills `out`; an error means no randomness could be had.
    fn fill(&self, out: &mut [u8]) -> Result<(), String>;
}

/// The operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, out: &mut [u8]) -> Result<(), String> {
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, out).map_err(|e| e.to_string())
    }
}

/// A seeded generator, for deterministic tests only: its output is
/// predictable, so a node that used it would accept replayed hellos.
#[derive(Debug)]
pub struct SeededEntropy(Mutex<rand::rngs::StdRng>);

impl SeededEntropy {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, out: &mut [u8]) -> Result<(), String> {
        let mut rng = self
            .0
            .lock()
            .map_err(|_| "the seeded generator's lock is poisoned".to_string())?;
        rand::Rng::fill_bytes(&mut *rng, out);
        Ok(())
    }
}

/// Everything a node takes from its host.
#[derive(Clone)]
pub struct Host {
    /// Listening and dialling.
    pub network: Arc<dyn Network>,
    /// Wall-clock time.
    pub clock: Arc<dyn WallClock>,
    /// Randomness for nonces and jitter.
    pub entropy: Arc<dyn Entropy>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    /// The real machine.
    pub fn os() -> Host {
        Host {
            network: Arc::new(OsNetwork),
            clock: Arc::new(OsClock),
            entropy: Arc::new(OsEntropy),
        }
    }

    /// A uniform draw in `[0, 1]`, or 1 when no randomness can be had (the
    /// longest backoff, the safe side).
    pub fn unit_random(&self) -> f64 {
        let mut bytes = [0u8; 8];
        if self.entropy.fill(&mut bytes).is_err() {
            return 1.0;
        }
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Connects a tonic channel to `endpoint` over this host's network (TLS,
    /// timeouts and keep-alive as configured on the endpoint).
    pub async fn channel(&self, endpoint: Endpoint) -> Result<Channel, tonic::transport::Error> {
        let network = self.network.clone();
        let connector = tower::service_fn(move |uri: Uri| {
            let network = network.clone();
            async move {
                let host = uri
                    .host()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let port = uri
                    .port_u16()
                    .unwrap_or(if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    });
                network.dial(host, port).await.map(TokioIo::new)
            }
        });
        endpoint.connect_with_connector(connector).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_entropy_repeats_and_os_entropy_does_not() {
        let (a, b) = (SeededEntropy::new(7), SeededEntropy::new(7));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x).unwrap();
        b.fill(&mut y).unwrap();
        assert_eq!(x, y);
        a.fill(&mut y).unwrap();
        assert_ne!(x, y, "a generator moves on");
        let os = OsEntropy;
        os.fill(&mut x).unwrap();
        os.fill(&mut y).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn unit_random_stays_in_the_unit_interval() {
        let host = Host {
            entropy: Arc::new(SeededEntropy::new(1)),
            ..Host::os()
        };
        for _ in 0..1000 {
            let u = host.unit_random();
            assert!((0.0..=1.0).contains(&u));
        }
    }
}
