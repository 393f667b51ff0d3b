import { create } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import {
  InvalidArgument,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  OCI_SPEC_URL,
  packJson,
} from '@ctrd/api-proto';
import { ContainerSchema, UpdateContainerRequestSchema } from '@ctrd/api-proto/containers';
import { describe, expect, it } from 'vitest';
import { jsonAnyInterceptor, VALUE_MAX_DEPTH, VALUE_URL } from '../src/json-any.js';
import { anyOf, bytesValueAny, jsonAnyRig, seen, valueAny } from './json-any-support.js';

const hex = (s: string | Uint8Array) => Buffer.from(s).toString('hex');
const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('JSON Any rewrite: responses', () => {
  it('shows a stored OCI spec as a google.protobuf.Value', async () => {
    const rig = jsonAnyRig();
    rig.spec = packJson(OCI_SPEC_URL, { ociVersion: '1.0.2', process: { args: ['sh'] } });
    const res = await rig.containers.get({ id: 'c' });
    expect(res.container?.spec?.typeUrl).toBe(VALUE_URL);
    expect(seen(res.container?.spec)).toEqual({ json: { ociVersion: '1.0.2', process: { args: ['sh'] } } });
  });

  it('shows JSON nested up to VALUE_MAX_DEPTH as a Value', async () => {
    const rig = jsonAnyRig();
    rig.spec = anyOf(OCI_SPEC_URL, `${'['.repeat(VALUE_MAX_DEPTH)}1${']'.repeat(VALUE_MAX_DEPTH)}`);
    const res = await rig.containers.get({ id: 'c' });
    expect(res.container?.spec?.typeUrl).toBe(VALUE_URL);
  });

  // Each of these failed the whole call with Internal before ("not in the type registry",
  // "maximum recursion depth", a non-finite number), or changed the value without a word (a
  // dropped __proto__ key, U+FFFD for a lone surrogate).
  for (const [what, bytes] of [
    ['invalid JSON', new TextEncoder().encode('{"a":')],
    ['bytes that are not UTF-8', Uint8Array.from([0x22, 0xff, 0x22])],
    ['JSON nested past what a Value carries', new TextEncoder().encode(deep(VALUE_MAX_DEPTH + 1))],
    ['100k levels of nesting', new TextEncoder().encode(deep(100_000))],
    ['a "__proto__" key', new TextEncoder().encode('{"annotations":{"__proto__":"x","b":"y"}}')],
    ['a number past a double', new TextEncoder().encode('{"limit":1e400}')],
    ['a lone surrogate', new TextEncoder().encode('{"a":"\\ud800"}')],
    ['a lone surrogate in a key', new TextEncoder().encode('{"\\udc00":1}')],
  ] as const) {
    it(`shows a stored spec with ${what} as a BytesValue of its exact bytes`, async () => {
      const rig = jsonAnyRig();
      rig.spec = anyOf(OCI_SPEC_URL, bytes);
      const res = await rig.containers.get({ id: 'c' });
      expect(seen(res.container?.spec)).toEqual({ bytes: hex(bytes) });
    });
  }
});

describe('JSON Any rewrite: requests', () => {
  it('turns a Value back into OCI JSON of the type its field carries', async () => {
    const rig = jsonAnyRig();
    await rig.containers.create({ container: { id: 'c', spec: valueAny({ ociVersion: '1.0.2' }) } });
    expect(rig.created?.spec?.typeUrl).toBe(OCI_SPEC_URL);
    expect(Buffer.from(rig.created!.spec!.value).toString()).toBe('{"ociVersion":"1.0.2"}');
    // Exec and Update carried a Spec URL before, which the shim refuses ("expected .../Process").
    await rig.tasks.exec({ containerId: 'c', execId: 'e', spec: valueAny({ args: ['sh'], cwd: '/' }) });
    expect(rig.exec?.spec?.typeUrl).toBe(OCI_PROCESS_URL);
    expect(JSON.parse(Buffer.from(rig.exec!.spec!.value).toString())).toEqual({ args: ['sh'], cwd: '/' });
    await rig.tasks.update({ containerId: 'c', resources: valueAny({ pids: { limit: 10 } }) });
    expect(rig.update?.resources?.typeUrl).toBe(OCI_LINUX_RESOURCES_URL);
    expect(JSON.parse(Buffer.from(rig.update!.resources!.value).toString())).toEqual({ pids: { limit: 10 } });
  });

  it('turns a BytesValue in an OCI field back into its bytes, and leaves one elsewhere alone', async () => {
    const rig = jsonAnyRig();
    const odd = new TextEncoder().encode('{"a":');
    await rig.containers.create({
      container: { id: 'c', spec: bytesValueAny(odd), extensions: { x: bytesValueAny(odd) } },
    });
    expect(rig.created?.spec?.typeUrl).toBe(OCI_SPEC_URL);
    expect(hex(rig.created!.spec!.value)).toBe(hex(odd));
    expect(rig.created?.extensions.x?.typeUrl).toBe('type.googleapis.com/google.protobuf.BytesValue');
  });

  it('gives back what Get showed: a spec read as a BytesValue is stored unchanged when sent back', async () => {
    const rig = jsonAnyRig();
    const odd = Uint8Array.from([0x7b, 0xff, 0x00]);
    rig.spec = anyOf(OCI_SPEC_URL, odd);
    const got = await rig.containers.get({ id: 'c' });
    await rig.containers.create({ container: got.container });
    expect(rig.created?.spec?.typeUrl).toBe(OCI_SPEC_URL);
    expect(hex(rig.created!.spec!.value)).toBe(hex(odd));
  });

  it('refuses an undecodable Value with InvalidArgument, naming the field', async () => {
    const message = create(UpdateContainerRequestSchema, {
      container: create(ContainerSchema, {
        id: 'c',
        spec: create(AnySchema, { typeUrl: VALUE_URL, value: Uint8Array.from([0x32, 0x05, 0x0a]) }),
      }),
    });
    const call = jsonAnyInterceptor(async () => {
      throw new Error('not reached');
    });
    const req = {
      header: new Headers({ 'content-type': 'application/json' }),
      stream: false,
      message,
    } as unknown as Parameters<typeof call>[0];
    const err = await call(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as Error).message).toMatch(
      /^containerd.services.containers.v1.Container.spec: .*cannot decode/,
    );
  });
});
