import { onnx } from 'onnx-proto';

/** Minimal ONNX graph writer on the onnx-proto protobuf classes, for the tiny test models. */
export const DT = { FLOAT: onnx.TensorProto.DataType.FLOAT, INT64: onnx.TensorProto.DataType.INT64, BOOL: onnx.TensorProto.DataType.BOOL };

type Dim = number | string;
type Attr = { name: string; i?: number; ints?: number[]; f?: number };

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inits: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private n = 0;

  constructor(private readonly name: string) {}

  private vi(name: string, elemType: number, dims: Dim[]): onnx.IValueInfoProto {
    return {
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    };
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(this.vi(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dim[]): string {
    this.outputs.push(this.vi(name, elemType, dims));
    return name;
  }

  floats(name: string, dims: number[], values: ArrayLike<number>): string {
    this.inits.push({ name, dataType: DT.FLOAT, dims, floatData: Array.from(values) });
    return name;
  }

  ints(name: string, dims: number[], values: number[]): string {
    this.inits.push({ name, dataType: DT.INT64, dims, int64Data: values });
    return name;
  }

  node(op: string, inputs: string[], outputs?: string[], attrs: Attr[] = []): string {
    const outs = outputs ?? [`${op.toLowerCase()}_${this.n++}`];
    const attribute = attrs.map((a) => {
      if (a.ints) return { name: a.name, type: onnx.AttributeProto.AttributeType.INTS, ints: a.ints };
      if (a.f !== undefined) return { name: a.name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.f };
      return { name: a.name, type: onnx.AttributeProto.AttributeType.INT, i: a.i };
    });
    this.nodes.push({ opType: op, input: inputs, output: outs, name: `${op}_${this.n++}`, attribute });
    return outs[0];
  }

  toBytes(opset = 17): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'ucm4-tiny-models',
      opsetImport: [{ domain: '', version: opset }],
      graph: { name: this.name, node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
