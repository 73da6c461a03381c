// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;

namespace KvmSharp.Abi;

// Fixed-size arrays for the uAPI structs (C `__u64 reserved[N]`), without unsafe fixed buffers.
#pragma warning disable CA1815, IDE0044, IDE0051, CS0169 // element fields are accessed through the inline-array indexer

[InlineArray(3)] public struct U16x3 { private ushort _e0; }
[InlineArray(5)] public struct U64x5 { private ulong _e0; }
[InlineArray(6)] public struct U64x6 { private ulong _e0; }
[InlineArray(11)] public struct U64x11 { private ulong _e0; }
[InlineArray(13)] public struct U64x13 { private ulong _e0; }
[InlineArray(14)] public struct U64x14 { private ulong _e0; }
[InlineArray(16)] public struct U64x16 { private ulong _e0; }
[InlineArray(4)] public struct U64x4 { private ulong _e0; }
[InlineArray(4)] public struct U32x4 { private uint _e0; }
[InlineArray(7)] public struct U8x7 { private byte _e0; }
[InlineArray(8)] public struct U8x8 { private byte _e0; }
[InlineArray(3)] public struct U64x3 { private ulong _e0; }
[InlineArray(64)] public struct U8x64 { private byte _e0; }
