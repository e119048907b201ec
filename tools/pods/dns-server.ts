/**
 * The stand-in kube-dns: answers A queries for cluster names from a records file the runner
 * rewrites (re-read on change), over UDP and TCP on port 53 of its pod. Unknown names get
 * NXDOMAIN; nothing is forwarded (no upstream exists, and nothing may leave the machine).
 *   node --import tsx tools/pods/dns-server.ts <records.json> <listen address> [port, default 53]
 * dns-packet (the wire codec used by multicast-dns and others) encodes and decodes messages.
 */
import dgram from 'node:dgram';
import { readFileSync, watchFile } from 'node:fs';
import net from 'node:net';
import * as packet from 'dns-packet';

const [file, host, portArg] = process.argv.slice(2);
const port = Number(portArg ?? 53);
let records: Record<string, string[]> = {};
const load = (): void => {
  try {
    records = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    /* keep the last good copy mid-write */
  }
};
load();
watchFile(file, { interval: 200 }, load);

function answer(query: Buffer): Buffer {
  const q = packet.decode(query);
  const question = q.questions?.[0];
  const name = (question?.name ?? '').toLowerCase().replace(/\.$/, '');
  const addrs = records[name];
  const known = addrs !== undefined;
  const answers =
    question && question.type === 'A' && addrs
      ? addrs.map((data) => ({ type: 'A' as const, name: question.name, ttl: 5, class: 'IN' as const, data }))
      : [];
  return packet.encode({
    id: q.id,
    type: 'response',
    flags: packet.AUTHORITATIVE_ANSWER | ((q.flags ?? 0) & packet.RECURSION_DESIRED) | packet.RECURSION_AVAILABLE | (known ? 0 : 3), // rcode 3 = NXDOMAIN
    questions: q.questions,
    answers,
  });
}

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  try {
    udp.send(answer(msg), rinfo.port, rinfo.address);
  } catch {
    /* malformed query: drop it */
  }
});
udp.bind(port, host);

net
  .createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        try {
          const out = answer(buf.subarray(2, 2 + len));
          const hdr = Buffer.alloc(2);
          hdr.writeUInt16BE(out.length);
          sock.write(Buffer.concat([hdr, out]));
        } catch {
          sock.destroy();
          return;
        }
        buf = buf.subarray(2 + len);
      }
    });
    sock.on('error', () => sock.destroy());
  })
  .listen(port, host);
process.stdout.write(`kube-dns stand-in on ${host}:${port} (udp, tcp) from ${file}\n`);
