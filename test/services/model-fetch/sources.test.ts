/** The source-side pieces of model-fetch: URLs, the hashes a source vouches for, SigV4 against AWS's published example. */
import { createHash } from 'node:crypto';
import { hubFileUrl, hubHash, s3Hash, s3ObjectUrl, signS3 } from '../../../services/model-fetch/sources';

test("SigV4 reproduces AWS's published GET Object example (sig-v4-header-based-auth: examplebucket/test.txt, Range bytes=0-9)", () => {
  const h = signS3(
    'GET',
    new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
    { range: 'bytes=0-9' },
    { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region: 'us-east-1' },
    new Date('2013-05-24T00:00:00Z'),
    createHash('sha256').update('').digest('hex'),
  );
  expect(h.authorization).toBe(
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,' +
      'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
  expect(h['x-amz-date']).toBe('20130524T000000Z');
  expect(h.range).toBe('bytes=0-9');
});

test('hub and S3 URLs encode each path segment, not the slashes', () => {
  expect(hubFileUrl('https://hub.example/', 'o/r', 'a'.repeat(40), 'onnx/x y.onnx').href).toBe(
    `https://hub.example/o/r/resolve/${'a'.repeat(40)}/onnx/x%20y.onnx`,
  );
  expect(s3ObjectUrl('http://minio:9000', 'models', 'whisper', 'onnx/enc(1).onnx').href).toBe(
    'http://minio:9000/models/whisper/onnx/enc%281%29.onnx',
  );
});

test('which headers count as a content hash', () => {
  const sha = 'ab'.repeat(32);
  expect(hubHash({ 'x-linked-etag': `"${sha}"`, etag: `"${'c'.repeat(40)}"` })).toEqual({
    algorithm: 'sha256',
    hex: sha,
    from: 'hub X-Linked-Etag',
  });
  expect(hubHash({ etag: `W/"${'c'.repeat(40)}"` })).toEqual({
    algorithm: 'git-sha1',
    hex: 'c'.repeat(40),
    from: 'hub ETag (git blob sha1)',
  });
  expect(hubHash({ etag: '"v1-abc"' })).toBeUndefined();
  expect(s3Hash({ etag: `"${'d'.repeat(32)}"` })).toEqual({ algorithm: 'md5', hex: 'd'.repeat(32), from: 'S3 ETag (md5)' });
  expect(s3Hash({ etag: `"${'d'.repeat(32)}-3"` })).toBeUndefined(); // multipart: not a content hash
});
