//! HTTPS GET check: keepalived `SSL_GET` (`enable_sni`, `sni_name`, and no
//! certificate verification, its default) and ldirectord `service = https`
//! (which verifies, and broke when LWP began checking host names against
//! real-server IPs: resource-agents#361). Both are offered: verification off
//! by default, or on against given roots with the name to verify chosen
//! independently of the address connected to.
//!
//! TLS is rustls with the `ring` provider. The HTTP part is
//! [`crate::http::HttpCheck`], unchanged, run over the TLS stream.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::checker::{connect_tcp, io_reason, CheckFuture, Checker};
use crate::http::HttpCheck;
use crate::state::{CheckResult, Reason};

/// How the server's certificate is treated.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Accept any certificate (keepalived `SSL_GET`'s behaviour). The
    /// handshake signatures are still checked.
    Off,
    /// Require a chain to one of these roots, valid for the server name.
    Roots(Arc<RootCertStore>),
}

/// TLS options of an HTTPS check.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The name sent as SNI and verified (keepalived `sni_name`); by
    /// default the target IP address, for which no SNI is sent.
    pub server_name: Option<String>,
    /// Send SNI (keepalived `enable_sni`); on by default.
    pub enable_sni: bool,
    /// Certificate verification.
    pub verify: Verify,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            server_name: None,
            enable_sni: true,
            verify: Verify::Off,
        }
    }
}

/// An HTTP GET over TLS.
#[derive(Debug, Clone)]
pub struct HttpsCheck {
    /// The request and what the response must look like.
    pub http: HttpCheck,
    server_name: ServerName<'static>,
    config: Arc<ClientConfig>,
}

impl HttpsCheck {
    /// An HTTPS check from an HTTP check and TLS options. Fails if the
    /// server name is not a valid DNS name or IP address.
    pub fn new(http: HttpCheck, tls: TlsOptions) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut config = match tls.verify {
            Verify::Off => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth(),
            Verify::Roots(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        };
        config.enable_sni = tls.enable_sni;
        let server_name = match tls.server_name {
            Some(n) => ServerName::try_from(n).map_err(|e| e.to_string())?,
            None => ServerName::IpAddress(http.target.ip().into()),
        };
        Ok(HttpsCheck {
            http,
            server_name,
            config: Arc::new(config),
        })
    }

    async fn fetch(&self) -> Result<(u16, Vec<u8>), Reason> {
        let tcp = connect_tcp(self.http.target, self.http.source)
            .await
            .map_err(|e| io_reason(&e))?;
        let tls = TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| Reason::Error(format!("TLS: {e}")))?;
        self.http.exchange(tls).await
    }
}

impl Checker for HttpsCheck {
    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.fetch().await {
                Ok((status, body)) => self.http.judge(status, &body),
                Err(reason) => CheckResult::fail(reason),
            }
        })
    }

    fn describe(&self) -> String {
        format!("SSL_GET {}{}", self.http.target, self.http.path)
    }
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
