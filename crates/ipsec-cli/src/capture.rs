//! Reading and writing captures: pcap and pcapng through the `pcap-file` crate, and
//! the link layers we understand (Ethernet, raw IP, Linux cooked v1 and v2, BSD
//! loopback).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;

/// One captured frame: its time, and the IP packet it carries (if the link layer is
/// one we understand).
pub struct Frame {
    /// Capture time since the epoch.
    pub time: Duration,
    /// The IP packet, or why there is none.
    pub ip: Result<Vec<u8>, &'static str>,
}

/// Strips the link-layer header of `data` for `link`, returning the IP packet.
pub fn ip_from_link(link: DataLink, data: &[u8]) -> Result<&[u8], &'static str> {
    let (ethertype, rest) = match link {
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => return Ok(data),
        DataLink::ETHERNET => {
            let mut off = 12;
            let mut et = u16_at(data, off).ok_or("truncated ethernet header")?;
            // Step over 802.1Q / 802.1ad tags.
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = u16_at(data, off).ok_or("truncated vlan tag")?;
            }
            (et, data.get(off + 2..).ok_or("truncated ethernet header")?)
        }
        DataLink::LINUX_SLL => {
            let et = u16_at(data, 14).ok_or("truncated linux cooked header")?;
            (et, data.get(16..).ok_or("truncated linux cooked header")?)
        }
        DataLink::LINUX_SLL2 => {
            let et = u16_at(data, 0).ok_or("truncated linux cooked v2 header")?;
            (
                et,
                data.get(20..).ok_or("truncated linux cooked v2 header")?,
            )
        }
        DataLink::NULL | DataLink::LOOP => {
            let fam = data.get(..4).ok_or("truncated loopback header")?;
            let rest = data.get(4..).unwrap_or(&[]);
            let v = rest.first().map(|b| b >> 4);
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            return match (v, le.min(be)) {
                (Some(4), 2) | (Some(6), 24 | 28 | 30) => Ok(rest),
                _ => Err("unknown loopback family"),
            };
        }
        _ => return Err("unsupported link type"),
    };
    match ethertype {
        0x0800 | 0x86dd => Ok(rest),
        _ => Err("not an IP frame"),
    }
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    let b = d.get(off..off + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads every frame of a pcap or pcapng file (told apart by their magic numbers).
pub fn read_frames(path: &Path) -> Result<Vec<Frame>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_frames_from(BufReader::new(f)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads every frame of a pcap or pcapng stream (told apart by their magic numbers),
/// such as a file's contents in memory.
///
/// # Errors
/// A message when the stream is shorter than a magic number, or the capture format
/// is broken (a frame with a link layer we do not understand is not an error: its
/// [`Frame::ip`] says why).
pub fn read_frames_from<R: Read>(mut r: R) -> Result<Vec<Frame>, String> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(|e| e.to_string())?;
    // Put the magic number back in front for the format's own reader.
    let r = std::io::Cursor::new(magic).chain(r);
    let mut out = Vec::new();
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut rd = PcapNgReader::new(r).map_err(|e| e.to_string())?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = rd.next_block() {
            let block = block.map_err(|e| e.to_string())?;
            match block {
                Block::SectionHeader(_) => links.clear(),
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(epb) => {
                    let link = links.get(epb.interface_id as usize).copied();
                    let ip = match link {
                        Some(l) => ip_from_link(l, &epb.data).map(<[u8]>::to_vec),
                        None => Err("packet on an undeclared interface"),
                    };
                    out.push(Frame {
                        time: epb.timestamp,
                        ip,
                    });
                }
                Block::SimplePacket(spb) => {
                    let ip = match links.first() {
                        Some(l) => ip_from_link(*l, &spb.data).map(<[u8]>::to_vec),
                        None => Err("packet on an undeclared interface"),
                    };
                    out.push(Frame {
                        time: Duration::ZERO,
                        ip,
                    });
                }
                _ => {}
            }
        }
    } else {
        let mut rd = PcapReader::new(r).map_err(|e| e.to_string())?;
        let link = rd.header().datalink;
        while let Some(p) = rd.next_packet() {
            let p = p.map_err(|e| e.to_string())?;
            out.push(Frame {
                time: p.timestamp,
                ip: ip_from_link(link, &p.data).map(<[u8]>::to_vec),
            });
        }
    }
    Ok(out)
}

/// Writes raw IP packets (link type RAW) to a pcap file.
pub struct PcapOut {
    w: PcapWriter<BufWriter<File>>,
}

impl PcapOut {
    /// Creates `path`.
    pub fn create(path: &Path) -> Result<Self, String> {
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..Default::default()
        };
        let w = PcapWriter::with_header(BufWriter::new(f), header).map_err(|e| e.to_string())?;
        Ok(PcapOut { w })
    }

    /// Appends one IP packet captured at `time` (since the Unix epoch).
    pub fn write(&mut self, time: Duration, ip: &[u8]) -> Result<(), String> {
        let len = u32::try_from(ip.len()).map_err(|_| "packet too large".to_string())?;
        self.w
            .write_packet(&PcapPacket::new(time, len, ip))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_layers() {
        let ip = [0x45u8, 0, 0, 20];
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert_eq!(ip_from_link(DataLink::ETHERNET, &eth).unwrap(), &ip);
        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd]);
        vlan.extend_from_slice(&ip);
        assert_eq!(ip_from_link(DataLink::ETHERNET, &vlan).unwrap(), &ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(ip_from_link(DataLink::LINUX_SLL, &sll).unwrap(), &ip);
        assert!(ip_from_link(DataLink::ETHERNET, &[0; 5]).is_err());
        assert!(ip_from_link(DataLink::LINUX_SLL2, &[0; 3]).is_err());
    }
}
