/** The stand-in kube-dns on a real socket: A answers, NXDOMAIN, TCP framing, live reload. */
import { ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as packet from 'dns-packet';

const dir = mkdtempSync(join(tmpdir(), 'dns-'));
const records = join(dir, 'dns.json');
let server: ChildProcess;
let port = 0;

function write(rec: Record<string, string[]>): void {
  writeFileSync(`${records}.tmp`, JSON.stringify(rec));
  renameSync(`${records}.tmp`, records);
}

beforeAll(async () => {
  write({ 'vault.ucm4-dev.svc.cluster.local': ['198.18.1.5'] });
  port = await new Promise<number>((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => ok(p));
    });
  });
  server = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(__dirname, '../../../tools/pods/dns-server.ts'), records, '127.0.0.1', String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((ok) => server.stdout!.once('data', () => ok()));
});
afterAll(() => {
  server.kill();
});

type Decoded = packet.Packet & { rcode?: string };

function udpQuery(name: string, type: 'A' | 'AAAA' = 'A'): Promise<Decoded> {
  return new Promise((ok, fail) => {
    const s = dgram.createSocket('udp4');
    s.once('message', (m) => {
      s.close();
      ok(packet.decode(m) as Decoded);
    });
    s.once('error', fail);
    s.send(packet.encode({ id: 7, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ type, name }] }), port, '127.0.0.1');
  });
}

test('answers A for a known name, NXDOMAIN for an unknown one, empty NOERROR for AAAA', async () => {
  const a = await udpQuery('vault.ucm4-dev.svc.cluster.local');
  expect(a.answers?.map((x) => (x as { data: string }).data)).toEqual(['198.18.1.5']);
  expect(a.rcode).toBe('NOERROR');
  expect((await udpQuery('nope.ucm4-dev.svc.cluster.local')).rcode).toBe('NXDOMAIN');
  const aaaa = await udpQuery('vault.ucm4-dev.svc.cluster.local', 'AAAA');
  expect([aaaa.rcode, aaaa.answers?.length]).toEqual(['NOERROR', 0]);
});

test('TCP queries use the two-byte length framing', async () => {
  const q = packet.encode({ id: 9, type: 'query', questions: [{ type: 'A', name: 'vault.ucm4-dev.svc.cluster.local' }] });
  const res = await new Promise<Buffer>((ok, fail) => {
    const c = net.connect(port, '127.0.0.1', () => {
      const h = Buffer.alloc(2);
      h.writeUInt16BE(q.length);
      c.write(Buffer.concat([h, q]));
    });
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        c.destroy();
        ok(buf.subarray(2));
      }
    });
    c.on('error', fail);
  });
  expect(packet.decode(res).answers?.map((x) => (x as { data: string }).data)).toEqual(['198.18.1.5']);
});

test('picks up a rewritten records file (endpoints changed)', async () => {
  write({ 'vault.ucm4-dev.svc.cluster.local': ['198.18.1.9', '198.18.1.10'] });
  let got: string[] = [];
  for (let i = 0; i < 40 && got.length !== 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    got = ((await udpQuery('vault.ucm4-dev.svc.cluster.local')).answers ?? []).map((x) => (x as { data: string }).data);
  }
  expect(got).toEqual(['198.18.1.9', '198.18.1.10']);
});

test('a malformed datagram is ignored and the server keeps answering', async () => {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((ok) =>
    s.send(Buffer.from([1, 2, 3]), port, '127.0.0.1', () => {
      s.close();
      ok();
    }),
  );
  expect((await udpQuery('vault.ucm4-dev.svc.cluster.local')).rcode).toBe('NOERROR');
});
