//! The real servers' side of tunnelling: `bpf/rvs_decap.bpf.c` attached to
//! a real server's interface strips IPIP, IPv6-in-IP, GUE and GRE headers
//! so the inner packet reaches the stack (for hosts without the ipip,
//! ip6_tunnel, fou or gre modules; see docs/xdp.md for the kernel set-up).
//! The same object carries a program that passes everything, for the peer
//! of a veth the engine runs on ([`Decap::passthrough`]).

use crate::datapath::{err, Error};
use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder, Xdp, XdpFlags};
use std::os::fd::AsFd;

/// The compiled decapsulation program.
pub const DECAP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvs_decap.bpf.o"));

/// The decapsulation program, loaded and (once attached) running.
pub struct Decap {
    obj: Object,
    prog: &'static str,
    attached: Option<(i32, XdpFlags)>,
}

impl std::fmt::Debug for Decap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decap")
            .field("attached", &self.attached.as_ref().map(|a| a.0))
            .finish()
    }
}

impl Decap {
    /// Loads the program; GUE packets are recognised by UDP destination
    /// port `gue_port` (0: no GUE).
    pub fn load(gue_port: u16) -> Result<Decap, Error> {
        let open = ObjectBuilder::default()
            .open_memory(DECAP_OBJECT)
            .map_err(err("opening the decap object"))?;
        let obj = open.load().map_err(err("loading the decap program"))?;
        {
            let m = obj
                .maps()
                .find(|m| m.name() == "rvs_decap_config")
                .ok_or_else(|| Error("decap object has no config map".into()))?;
            let mut v = gue_port.to_be_bytes().to_vec();
            v.extend_from_slice(&[0, 0]);
            m.update(&0u32.to_ne_bytes(), &v, MapFlags::ANY)
                .map_err(err("decap config"))?;
        }
        Ok(Decap {
            obj,
            prog: "rvs_decap",
            attached: None,
        })
    }

    /// Loads the program that passes every frame unchanged. On veth, the
    /// kernel delivers frames the engine sends with XDP_TX only to a peer
    /// that runs an XDP program: attach this to the peer of a veth the
    /// engine runs on (a real NIC needs nothing).
    pub fn passthrough() -> Result<Decap, Error> {
        let mut d = Decap::load(0)?;
        d.prog = "rvs_pass";
        Ok(d)
    }

    /// Attaches to interface `ifindex` (native mode, else generic).
    pub fn attach(&mut self, ifindex: i32) -> Result<(), Error> {
        let p = self
            .obj
            .progs()
            .find(|p| p.name() == self.prog)
            .ok_or_else(|| Error(format!("decap object has no program {}", self.prog)))?;
        let x = Xdp::new(p.as_fd());
        let flags = match x.attach(ifindex, XdpFlags::DRV_MODE) {
            Ok(()) => XdpFlags::DRV_MODE,
            Err(_) => {
                x.attach(ifindex, XdpFlags::SKB_MODE)
                    .map_err(err("attaching decap"))?;
                XdpFlags::SKB_MODE
            }
        };
        self.attached = Some((ifindex, flags));
        Ok(())
    }

    /// Packets decapsulated so far.
    pub fn count(&self) -> u64 {
        self.obj
            .maps()
            .find(|m| m.name() == "rvs_decap_count")
            .and_then(|m| m.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok().flatten())
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
            .unwrap_or(0)
    }
}

impl Drop for Decap {
    fn drop(&mut self) {
        if let Some((ifindex, flags)) = self.attached.take() {
            if let Some(p) = self.obj.progs().find(|p| p.name() == self.prog) {
                let _ = Xdp::new(p.as_fd()).detach(ifindex, flags);
            }
        }
    }
}
