//! The wire format of IPVS sync messages (`net/netfilter/ipvs/ip_vs_sync.c`):
//! version 1 (the default since Linux 2.6.39: IPv4 and IPv6 records with
//! fwmark, timeout and options) and the original version 0 (IPv4 only, no
//! timeout). All multi-byte fields are big-endian.
//!
//! Decoding follows `ip_vs_process_message`: a datagram whose length differs
//! from the header's size is refused whole; inside a version 1 message a
//! record that overruns the message, has an unknown record version or a
//! malformed option ends the message (the records before it stand), and a
//! record with an unknown mandatory option is skipped. A buffer is a
//! version 1 message when its version byte is 1 and its reserved and spare
//! fields are 0; anything else is read as version 0.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The version 1 message header: reserved, syncid, size, nr_conns, version, spare.
pub const HEADER_V1_LEN: usize = 8;
/// The version 0 message header: nr_conns, syncid, size.
pub const HEADER_V0_LEN: usize = 4;
/// An IPv4 version 1 record without options.
pub const RECORD_V4_LEN: usize = 36;
/// An IPv6 version 1 record without options.
pub const RECORD_V6_LEN: usize = 72;
/// A version 0 record without sequence options.
pub const RECORD_V0_LEN: usize = 24;
/// The sequence-number option data (in_seq then out_seq, 3 × u32 each).
pub const SEQ_LEN: usize = 24;
/// Longest persistence-engine data (`IP_VS_PEDATA_MAXLEN`).
pub const PE_DATA_MAXLEN: usize = 255;
/// Longest persistence-engine name (`IP_VS_PENAME_MAXLEN`).
pub const PE_NAME_MAXLEN: usize = 16;
/// The record length field has 12 bits.
pub const RECORD_MAXLEN: usize = 0x0fff;

const SYNC_PROTO_VER: u8 = 1;
const STYPE_F_INET6: u8 = 1;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
/// Option type bit: the option may be skipped by a receiver that does not
/// know it (`IPVS_OPT_F_PARAM`).
pub const OPT_F_PARAM: u8 = 1 << 6;

/// Which message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V0,
    V1,
}

/// One direction's TCP sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seq {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// Both directions' sequence adjustments (the SEQ_DATA option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqOptions {
    pub in_seq: Seq,
    pub out_seq: Seq,
}

/// One connection of a sync message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRecord {
    /// IP protocol number (0 for fwmark templates).
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` (version 0 carries only the low 16 bits).
    pub flags: u32,
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    /// Version 1 only (0 in version 0).
    pub fwmark: u32,
    /// Seconds; version 1 only (0 in version 0: "use your own").
    pub timeout: u32,
    /// All three addresses have the record's family.
    pub caddr: IpAddr,
    pub vaddr: IpAddr,
    pub daddr: IpAddr,
    pub seq: Option<SeqOptions>,
    /// Persistence-engine data and name (version 1 only).
    pub pe_data: Option<Vec<u8>>,
    pub pe_name: Option<Vec<u8>>,
}

impl ConnRecord {
    pub fn is_ipv6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Bytes this record takes in a message of `version`, without padding.
    pub fn wire_len(&self, version: Version) -> usize {
        match version {
            // Version 0 has no option headers: the flags say whether the
            // sequence data follows.
            Version::V0 => {
                RECORD_V0_LEN
                    + if self.flags & SEQ_MASK != 0 {
                        SEQ_LEN
                    } else {
                        0
                    }
            }
            Version::V1 => {
                let mut n = if self.is_ipv6() {
                    RECORD_V6_LEN
                } else {
                    RECORD_V4_LEN
                };
                if self.seq.is_some() {
                    n += SEQ_LEN + 2;
                }
                if let Some(d) = &self.pe_data {
                    n += d.len() + 2;
                }
                if let Some(d) = &self.pe_name {
                    n += d.len() + 2;
                }
                n
            }
        }
    }

    /// Whether this record can be written in `version`.
    pub fn check(&self, version: Version) -> Result<(), EncodeError> {
        let v6 = self.is_ipv6();
        if self.vaddr.is_ipv6() != v6 || self.daddr.is_ipv6() != v6 {
            return Err(EncodeError::MixedFamily);
        }
        match version {
            Version::V0 => {
                if v6 {
                    return Err(EncodeError::Ipv6InV0);
                }
                if self.pe_data.is_some() || self.pe_name.is_some() {
                    return Err(EncodeError::PeInV0);
                }
            }
            Version::V1 => {
                if let Some(d) = &self.pe_data {
                    if d.is_empty() || d.len() > PE_DATA_MAXLEN {
                        return Err(EncodeError::PeDataLength(d.len()));
                    }
                }
                if let Some(n) = &self.pe_name {
                    if n.is_empty() || n.len() > PE_NAME_MAXLEN {
                        return Err(EncodeError::PeNameLength(n.len()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a record or message cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    MixedFamily,
    Ipv6InV0,
    PeInV0,
    PeDataLength(usize),
    PeNameLength(usize),
    /// More than 255 records or 65535 bytes in one message.
    MessageTooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::MixedFamily => write!(f, "addresses of mixed families in one record"),
            EncodeError::Ipv6InV0 => write!(f, "version 0 messages carry IPv4 only"),
            EncodeError::PeInV0 => write!(f, "version 0 messages carry no persistence data"),
            EncodeError::PeDataLength(n) => write!(f, "persistence data of {n} bytes (1..=255)"),
            EncodeError::PeNameLength(n) => {
                write!(f, "persistence engine name of {n} bytes (1..=16)")
            }
            EncodeError::MessageTooLarge => write!(f, "more than 255 records or 65535 bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why a datagram, or the rest of it, was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the 4-byte version 0 header.
    TooShort(usize),
    /// The header's size is not the datagram's length.
    SizeMismatch { header: u16, datagram: usize },
    /// Record `index` starts or ends past the message.
    RecordOverrun { index: usize },
    /// Record `index` has a record version other than 0.
    RecordVersion { index: usize, version: u8 },
    /// Record `index` has a type byte that is neither IPv4 (0) nor IPv6 (bit 0).
    RecordType { index: usize, kind: u8 },
    /// Record `index` is shorter than its fixed part.
    RecordTooShort { index: usize, len: usize },
    /// An option of record `index` is cut off, empty or overruns the record.
    OptionOverrun { index: usize },
    /// An option of record `index` has a bad length or appears twice.
    BadOption { index: usize, kind: u8, len: u8 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort(n) => write!(f, "datagram of {n} bytes is shorter than a header"),
            DecodeError::SizeMismatch { header, datagram } => {
                write!(f, "header says {header} bytes, datagram has {datagram}")
            }
            DecodeError::RecordOverrun { index } => {
                write!(f, "record {index} overruns the message")
            }
            DecodeError::RecordVersion { index, version } => {
                write!(f, "record {index} has unknown version {version}")
            }
            DecodeError::RecordType { index, kind } => {
                write!(f, "record {index} has unknown type {kind}")
            }
            DecodeError::RecordTooShort { index, len } => {
                write!(
                    f,
                    "record {index} is {len} bytes, shorter than its addresses"
                )
            }
            DecodeError::OptionOverrun { index } => {
                write!(f, "an option of record {index} is cut off")
            }
            DecodeError::BadOption { index, kind, len } => {
                write!(f, "record {index} has a bad option {kind} of length {len}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub version: Version,
    pub syncid: u8,
    /// The header's record count.
    pub nr_conns: u8,
    /// The records read, in order.
    pub records: Vec<ConnRecord>,
    /// Indexes of records skipped for an unknown mandatory option.
    pub skipped: Vec<usize>,
    /// Why the records after the last one read were dropped, if they were.
    pub dropped_rest: Option<DecodeError>,
}

impl Message {
    /// An empty version 1 message: never sent by a Linux master (it queues
    /// buffers only once they hold a record), used by rvs backups to ask the
    /// master for its whole table. A Linux backup reads it as a message
    /// with no records.
    pub fn is_table_request(&self) -> bool {
        self.version == Version::V1 && self.nr_conns == 0
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn v4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

fn v6(b: &[u8], at: usize) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

fn seq_at(b: &[u8], at: usize) -> SeqOptions {
    let s = |o: usize| Seq {
        init_seq: be32(b, at + o),
        delta: be32(b, at + o + 4),
        previous_delta: be32(b, at + o + 8),
    };
    SeqOptions {
        in_seq: s(0),
        out_seq: s(12),
    }
}

/// Decodes one datagram.
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    if buf.len() < HEADER_V0_LEN {
        return Err(DecodeError::TooShort(buf.len()));
    }
    let size = be16(buf, 2);
    if size as usize != buf.len() {
        return Err(DecodeError::SizeMismatch {
            header: size,
            datagram: buf.len(),
        });
    }
    let is_v1 =
        buf.len() >= HEADER_V1_LEN && buf[5] == SYNC_PROTO_VER && buf[0] == 0 && be16(buf, 6) == 0;
    if is_v1 {
        Ok(decode_v1(buf))
    } else {
        Ok(decode_v0(buf))
    }
}

fn decode_v1(buf: &[u8]) -> Message {
    let mut m = Message {
        version: Version::V1,
        syncid: buf[1],
        nr_conns: buf[4],
        records: Vec::new(),
        skipped: Vec::new(),
        dropped_rest: None,
    };
    let mut p = HEADER_V1_LEN;
    for index in 0..m.nr_conns as usize {
        if p + RECORD_V4_LEN > buf.len() {
            m.dropped_rest = Some(DecodeError::RecordOverrun { index });
            break;
        }
        let ver_size = be16(buf, p + 2);
        let size = (ver_size & SVER_MASK) as usize;
        let end = p + size;
        if end > buf.len() {
            m.dropped_rest = Some(DecodeError::RecordOverrun { index });
            break;
        }
        if ver_size >> SVER_SHIFT != 0 {
            m.dropped_rest = Some(DecodeError::RecordVersion {
                index,
                version: (ver_size >> SVER_SHIFT) as u8,
            });
            break;
        }
        match decode_record_v1(&buf[p..end], index) {
            Ok(Some(r)) => m.records.push(r),
            Ok(None) => m.skipped.push(index),
            Err(e) => {
                m.dropped_rest = Some(e);
                break;
            }
        }
        p += (size + 3) & !3;
    }
    m
}

/// One version 1 record (`rec` is exactly its declared size). `Ok(None)`:
/// skipped for an unknown mandatory option.
fn decode_record_v1(rec: &[u8], index: usize) -> Result<Option<ConnRecord>, DecodeError> {
    let kind = rec[0];
    let ipv6 = if kind & STYPE_F_INET6 != 0 {
        true
    } else if kind == 0 {
        false
    } else {
        return Err(DecodeError::RecordType { index, kind });
    };
    let fixed = if ipv6 { RECORD_V6_LEN } else { RECORD_V4_LEN };
    if rec.len() < fixed {
        return Err(DecodeError::RecordTooShort {
            index,
            len: rec.len(),
        });
    }
    let (caddr, vaddr, daddr) = if ipv6 {
        (v6(rec, 24), v6(rec, 40), v6(rec, 56))
    } else {
        (v4(rec, 24), v4(rec, 28), v4(rec, 32))
    };
    let mut r = ConnRecord {
        protocol: rec[1],
        flags: be32(rec, 4),
        state: be16(rec, 8),
        cport: be16(rec, 10),
        vport: be16(rec, 12),
        dport: be16(rec, 14),
        fwmark: be32(rec, 16),
        timeout: be32(rec, 20),
        caddr,
        vaddr,
        daddr,
        seq: None,
        pe_data: None,
        pe_name: None,
    };
    let mut p = fixed;
    let mut skip = false;
    while p < rec.len() {
        if p + 2 > rec.len() {
            return Err(DecodeError::OptionOverrun { index });
        }
        let (kind, len) = (rec[p], rec[p + 1]);
        p += 2;
        if len == 0 || p + len as usize > rec.len() {
            return Err(DecodeError::OptionOverrun { index });
        }
        let data = &rec[p..p + len as usize];
        let bad = DecodeError::BadOption { index, kind, len };
        match kind & !OPT_F_PARAM {
            OPT_SEQ_DATA => {
                if data.len() != SEQ_LEN || r.seq.is_some() {
                    return Err(bad);
                }
                r.seq = Some(seq_at(data, 0));
            }
            OPT_PE_DATA => {
                if data.len() > PE_DATA_MAXLEN || r.pe_data.is_some() {
                    return Err(bad);
                }
                r.pe_data = Some(data.to_vec());
            }
            OPT_PE_NAME => {
                if data.len() > PE_NAME_MAXLEN || r.pe_name.is_some() {
                    return Err(bad);
                }
                r.pe_name = Some(data.to_vec());
            }
            _ => {
                if kind & OPT_F_PARAM == 0 {
                    // Linux stops reading this record's options here and
                    // drops the record.
                    skip = true;
                    break;
                }
            }
        }
        p += len as usize;
    }
    Ok(if skip { None } else { Some(r) })
}

fn decode_v0(buf: &[u8]) -> Message {
    let mut m = Message {
        version: Version::V0,
        syncid: buf[1],
        nr_conns: buf[0],
        records: Vec::new(),
        skipped: Vec::new(),
        dropped_rest: None,
    };
    let mut p = HEADER_V0_LEN;
    for index in 0..m.nr_conns as usize {
        if p + RECORD_V0_LEN > buf.len() {
            m.dropped_rest = Some(DecodeError::RecordOverrun { index });
            break;
        }
        let s = &buf[p..];
        let flags = be16(s, 20) as u32;
        let mut r = ConnRecord {
            protocol: s[1],
            flags,
            state: be16(s, 22),
            cport: be16(s, 2),
            vport: be16(s, 4),
            dport: be16(s, 6),
            fwmark: 0,
            timeout: 0,
            caddr: v4(s, 8),
            vaddr: v4(s, 12),
            daddr: v4(s, 16),
            seq: None,
            pe_data: None,
            pe_name: None,
        };
        if flags & SEQ_MASK != 0 {
            if p + RECORD_V0_LEN + SEQ_LEN > buf.len() {
                m.dropped_rest = Some(DecodeError::RecordOverrun { index });
                break;
            }
            r.seq = Some(seq_at(s, RECORD_V0_LEN));
            p += RECORD_V0_LEN + SEQ_LEN;
        } else {
            p += RECORD_V0_LEN;
        }
        m.records.push(r);
    }
    m
}

/// `IP_VS_CONN_F_IN_SEQ | IP_VS_CONN_F_OUT_SEQ`.
const SEQ_MASK: u32 = 0x0600;
/// `IP_VS_CONN_F_HASHED`: never sent.
const HASHED: u32 = 0x0040;

/// A message being filled, as the master's `struct ip_vs_sync_buff`.
#[derive(Debug, Clone)]
pub struct MessageBuf {
    version: Version,
    buf: Vec<u8>,
    /// Bytes allocated: records are added while they fit.
    cap: usize,
    nr_conns: u8,
}

impl MessageBuf {
    /// An empty message of `version` for `syncid` that accepts records up to
    /// `maxlen` bytes in all (or one larger record, alone).
    pub fn new(version: Version, syncid: u8, maxlen: usize) -> MessageBuf {
        let mut buf = Vec::with_capacity(maxlen.min(65535));
        match version {
            Version::V1 => buf.extend_from_slice(&[0, syncid, 0, 8, 0, SYNC_PROTO_VER, 0, 0]),
            Version::V0 => buf.extend_from_slice(&[0, syncid, 0, 4]),
        }
        MessageBuf {
            version,
            buf,
            cap: maxlen,
            nr_conns: 0,
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn nr_conns(&self) -> u8 {
        self.nr_conns
    }

    pub fn is_empty(&self) -> bool {
        self.nr_conns == 0
    }

    fn pad(&self) -> usize {
        match self.version {
            Version::V1 if self.nr_conns > 0 => (4 - self.buf.len() % 4) % 4,
            _ => 0,
        }
    }

    /// Whether `r` fits (with the padding before it). An empty message
    /// takes any one record, growing past `maxlen` if it must (as Linux
    /// allocates `max(len + header, maxlen)`).
    pub fn fits(&self, r: &ConnRecord) -> bool {
        let len = r.wire_len(self.version);
        if self.nr_conns == u8::MAX {
            return false;
        }
        if self.nr_conns == 0 {
            return self.buf.len() + len <= 65535;
        }
        self.buf.len() + self.pad() + len <= self.cap
    }

    /// Appends a record (the caller checked [`MessageBuf::fits`]).
    pub fn push(&mut self, r: &ConnRecord) -> Result<(), EncodeError> {
        r.check(self.version)?;
        if !self.fits(r) {
            return Err(EncodeError::MessageTooLarge);
        }
        let pad = self.pad();
        self.buf.resize(self.buf.len() + pad, 0);
        match self.version {
            Version::V1 => self.write_v1(r),
            Version::V0 => self.write_v0(r),
        }
        self.nr_conns += 1;
        let size = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&size.to_be_bytes());
        match self.version {
            Version::V1 => self.buf[4] = self.nr_conns,
            Version::V0 => self.buf[0] = self.nr_conns,
        }
        Ok(())
    }

    fn addr(&mut self, a: &IpAddr) {
        match a {
            IpAddr::V4(a) => self.buf.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => self.buf.extend_from_slice(&a.octets()),
        }
    }

    fn seq(&mut self, s: &SeqOptions) {
        for q in [s.in_seq, s.out_seq] {
            for v in [q.init_seq, q.delta, q.previous_delta] {
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    fn write_v1(&mut self, r: &ConnRecord) {
        let len = r.wire_len(Version::V1) as u16 & SVER_MASK;
        let b = &mut self.buf;
        b.push(if r.is_ipv6() { STYPE_F_INET6 } else { 0 });
        b.push(r.protocol);
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&(r.flags & !HASHED).to_be_bytes());
        b.extend_from_slice(&r.state.to_be_bytes());
        b.extend_from_slice(&r.cport.to_be_bytes());
        b.extend_from_slice(&r.vport.to_be_bytes());
        b.extend_from_slice(&r.dport.to_be_bytes());
        b.extend_from_slice(&r.fwmark.to_be_bytes());
        b.extend_from_slice(&r.timeout.to_be_bytes());
        self.addr(&r.caddr);
        self.addr(&r.vaddr);
        self.addr(&r.daddr);
        if let Some(s) = &r.seq {
            self.buf.extend_from_slice(&[OPT_SEQ_DATA, SEQ_LEN as u8]);
            self.seq(s);
        }
        if let Some(d) = &r.pe_data {
            self.buf.extend_from_slice(&[OPT_PE_DATA, d.len() as u8]);
            self.buf.extend_from_slice(d);
        }
        if let Some(n) = &r.pe_name {
            self.buf.extend_from_slice(&[OPT_PE_NAME, n.len() as u8]);
            self.buf.extend_from_slice(n);
        }
    }

    fn write_v0(&mut self, r: &ConnRecord) {
        let b = &mut self.buf;
        b.push(0);
        b.push(r.protocol);
        b.extend_from_slice(&r.cport.to_be_bytes());
        b.extend_from_slice(&r.vport.to_be_bytes());
        b.extend_from_slice(&r.dport.to_be_bytes());
        self.addr(&r.caddr);
        self.addr(&r.vaddr);
        self.addr(&r.daddr);
        let flags = (r.flags & !HASHED) as u16;
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&r.state.to_be_bytes());
        if r.flags & SEQ_MASK != 0 {
            self.seq(&r.seq.unwrap_or_default());
        }
    }

    /// The datagram.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Encodes `records` as one message (no size limit but the format's own:
/// 255 records, 65535 bytes).
pub fn encode(
    version: Version,
    syncid: u8,
    records: &[ConnRecord],
) -> Result<Vec<u8>, EncodeError> {
    let mut m = MessageBuf::new(version, syncid, 65535);
    for r in records {
        m.push(r)?;
    }
    Ok(m.into_bytes())
}

/// The table request of an rvs backup: an empty version 1 message.
pub fn table_request(syncid: u8) -> Vec<u8> {
    MessageBuf::new(Version::V1, syncid, HEADER_V1_LEN).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> ConnRecord {
        ConnRecord {
            protocol: 6,
            flags: 0x100,
            state: 5,
            cport: 1000,
            vport: 80,
            dport: 8080,
            fwmark: 0,
            timeout: 120,
            caddr: "198.18.0.10".parse().unwrap(),
            vaddr: "198.18.0.100".parse().unwrap(),
            daddr: "198.19.1.2".parse().unwrap(),
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    #[test]
    fn short_and_mismatched_datagrams_are_refused() {
        assert_eq!(decode(&[0, 1, 0]), Err(DecodeError::TooShort(3)));
        assert_eq!(
            decode(&[0, 1, 0, 9, 0, 1, 0, 0]),
            Err(DecodeError::SizeMismatch {
                header: 9,
                datagram: 8
            })
        );
    }

    #[test]
    fn records_are_padded_to_four_bytes_between_them_only() {
        let mut a = rec();
        a.pe_data = Some(b"abc".to_vec());
        a.pe_name = Some(b"sip".to_vec());
        let b = rec();
        let bytes = encode(Version::V1, 3, &[a.clone(), b.clone()]).unwrap();
        // 8 + (36 + 5 + 5 = 46, padded to 48) + 36.
        assert_eq!(bytes.len(), 8 + 48 + 36);
        let m = decode(&bytes).unwrap();
        assert_eq!(m.records, vec![a, b]);
        assert_eq!(m.syncid, 3);
    }

    #[test]
    fn a_record_overrunning_the_message_drops_the_rest() {
        let mut bytes = encode(Version::V1, 0, &[rec(), rec()]).unwrap();
        // Second record claims 40 bytes.
        bytes[8 + 36 + 3] = 40;
        let m = decode(&bytes).unwrap();
        assert_eq!(m.records.len(), 1);
        assert_eq!(
            m.dropped_rest,
            Some(DecodeError::RecordOverrun { index: 1 })
        );
    }

    #[test]
    fn unknown_options_skip_the_record_only_when_mandatory() {
        let mut r = rec();
        r.pe_data = Some(vec![1, 2]);
        let mut bytes = encode(Version::V1, 0, &[r.clone(), rec()]).unwrap();
        // Turn PE_DATA (type 2) into an unknown optional type.
        bytes[8 + 36] = 9 | OPT_F_PARAM;
        let m = decode(&bytes).unwrap();
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.records[0].pe_data, None);
        bytes[8 + 36] = 9;
        let m = decode(&bytes).unwrap();
        assert_eq!(m.records, vec![rec()]);
        assert_eq!(m.skipped, vec![0]);
        assert_eq!(m.dropped_rest, None);
    }

    #[test]
    fn bad_option_lengths_and_duplicates_drop_the_rest() {
        let mut r = rec();
        r.seq = Some(SeqOptions::default());
        let mut bytes = encode(Version::V1, 0, &[r.clone()]).unwrap();
        bytes[8 + 36 + 1] = 23;
        bytes[8 + 3] = 36 + 2 + 23;
        bytes.truncate(8 + 36 + 2 + 23);
        let n = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&n.to_be_bytes());
        let m = decode(&bytes).unwrap();
        assert!(matches!(
            m.dropped_rest,
            Some(DecodeError::BadOption { .. })
        ));
        // PE name longer than 16.
        let mut r = rec();
        r.pe_name = Some(vec![b'x'; 17]);
        assert_eq!(
            encode(Version::V1, 0, &[r]),
            Err(EncodeError::PeNameLength(17))
        );
    }

    #[test]
    fn version_zero_round_trips_ipv4_with_sequence_options() {
        let mut r = rec();
        r.timeout = 0;
        r.flags |= 0x400;
        r.seq = Some(SeqOptions {
            in_seq: Seq {
                init_seq: 1,
                delta: 2,
                previous_delta: 3,
            },
            out_seq: Seq::default(),
        });
        let bytes = encode(Version::V0, 9, &[r.clone(), rec_v0()]).unwrap();
        assert_eq!(bytes.len(), 4 + 48 + 24);
        let m = decode(&bytes).unwrap();
        assert_eq!(m.version, Version::V0);
        assert_eq!(m.records, vec![r, rec_v0()]);
        let mut v6 = rec();
        v6.caddr = "2001:db8::1".parse().unwrap();
        v6.vaddr = "2001:db8::2".parse().unwrap();
        v6.daddr = "2001:db8::3".parse().unwrap();
        assert_eq!(encode(Version::V0, 0, &[v6]), Err(EncodeError::Ipv6InV0));
    }

    fn rec_v0() -> ConnRecord {
        ConnRecord {
            timeout: 0,
            ..rec()
        }
    }

    #[test]
    fn a_table_request_is_an_empty_v1_message() {
        let m = decode(&table_request(4)).unwrap();
        assert!(m.is_table_request());
        assert_eq!(m.syncid, 4);
        // A v0 message with no records is not a request.
        assert!(!decode(&[0, 4, 0, 4]).unwrap().is_table_request());
    }
}
