//! Plugin stdout/stderr: forwarded line by line to the host log, prefixed
//! with the plugin name (WASI stdio is all a plugin gets of the terminal),
//! escaped like every plugin text.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Longest line kept before it is logged in pieces.
const MAX_LINE: usize = 8 * 1024;

#[derive(Clone)]
pub(crate) struct PluginStdio {
    pub plugin: Arc<str>,
    pub stream: &'static str,
}

impl IsTerminal for PluginStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginStdio {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            stdio: self.clone(),
            line: Vec::new(),
        })
    }
}

struct LineLogger {
    stdio: PluginStdio,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = crate::text::escape(text.trim_end_matches(['\n', '\r']));
        tracing::info!(target: "plugin", "[{}:{}] {}", self.stdio.plugin, self.stdio.stream, text);
        self.line.clear();
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' || self.line.len() >= MAX_LINE {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
