//! A lean HTTP/1.1 client for the refresh chains, in the manner of wrk: one
//! keep-alive connection per chain, the request written as bytes, the answer
//! read with httparse, no task or timer of its own.
//!
//! The load generator shares the two cores with the server and PostgreSQL,
//! so what it spends is taken from what it measures. Through reqwest a
//! refresh cost the generator about 75 µs of CPU here (a URL, a pool
//! checkout, a connection task and its channels, a timer), more than a third
//! of what the server spends on it; this costs the generator what a chain
//! needs: one write, one read, one parse.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Url;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::USER_AGENT;

/// A refresh answer longer than this is not one of ours.
const MAX_ANSWER: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct ChainConnection {
    address: SocketAddr,
    /// What every request starts with, up to `Content-Length: `.
    head: Vec<u8>,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

#[derive(Deserialize)]
struct Refreshed {
    refresh_token: Option<String>,
}

impl ChainConnection {
    /// A connection (made at the first refresh) to the server of `refresh`,
    /// an `http://` URL on a loopback address.
    pub fn new(refresh: &Url) -> anyhow::Result<Self> {
        let address = refresh
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .context("the refresh URL has no address")?;
        let mut head = Vec::new();
        write!(
            head,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\nContent-Length: ",
            refresh.path(),
            address,
        )?;
        Ok(Self {
            address,
            head,
            stream: None,
            request: Vec::with_capacity(512),
            answer: Vec::with_capacity(4096),
        })
    }

    /// One rotation: the answer must be `200` and carry the successor.
    pub async fn refresh(&mut self, refresh_token: &str) -> anyhow::Result<String> {
        let body = serde_json::to_vec(&serde_json::json!({ "refresh_token": refresh_token }))?;
        self.request.clear();
        self.request.extend_from_slice(&self.head);
        write!(self.request, "{}\r\n\r\n", body.len())?;
        self.request.extend_from_slice(&body);
        let (status, body) = tokio::time::timeout(TIMEOUT, self.exchange())
            .await
            .context("refresh: no answer within 15 s")??;
        if status != 200 {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            bail!("refresh: {status}: {text}");
        }
        serde_json::from_slice::<Refreshed>(&body)?
            .refresh_token
            .context("refresh: no successor in the answer (the chain was broken)")
    }

    /// Sends the request and reads the answer, on a new connection when the
    /// last one was closed or turns out to be (once: a keep-alive connection
    /// the server closed while idle).
    async fn exchange(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let reused = self.stream.is_some();
        match self.try_exchange().await {
            Ok(answer) => Ok(answer),
            Err(_) if reused => {
                self.stream = None;
                self.try_exchange().await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_exchange(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.address).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().context("connected just now")?;
        let outcome = exchange_on(stream, &self.request, &mut self.answer).await;
        match &outcome {
            Ok((_, _, keep_alive)) if *keep_alive => {}
            _ => self.stream = None,
        }
        outcome.map(|(status, body, _)| (status, body))
    }
}

/// The status, the body, and whether the connection stays open.
async fn exchange_on(
    stream: &mut TcpStream,
    request: &[u8],
    answer: &mut Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>, bool)> {
    stream.write_all(request).await?;
    answer.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(answer)? {
            let status = response.code.context("an answer without a status")?;
            let mut length = None;
            let mut keep_alive = true;
            for header in response.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    length = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
                } else if header.name.eq_ignore_ascii_case("connection") {
                    keep_alive = !header.value.eq_ignore_ascii_case(b"close");
                }
            }
            let length = length.context("an answer without Content-Length")?;
            if head + length > MAX_ANSWER {
                bail!("an answer of {length} bytes");
            }
            while answer.len() < head + length {
                read_more(stream, answer).await?;
            }
            return Ok((status, answer[head..head + length].to_vec(), keep_alive));
        }
        if answer.len() >= MAX_ANSWER {
            bail!("an answer head over {MAX_ANSWER} bytes");
        }
        read_more(stream, answer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, answer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("the server closed the connection");
    }
    answer.extend_from_slice(&chunk[..n]);
    Ok(())
}
