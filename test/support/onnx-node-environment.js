// Jest runs each test file in its own vm realm, but onnxruntime-node's native binding returns typed arrays of
// the main realm, which onnxruntime-common's `instanceof Float32Array` checks then reject. Test files that run
// ONNX models opt in with `@jest-environment ./test/support/onnx-node-environment.js` so that both
// sides see the main realm's typed-array constructors.
const { TestEnvironment } = require('jest-environment-node');

const TYPED = [
  'ArrayBuffer',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OnnxNodeEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxNodeEnvironment;
