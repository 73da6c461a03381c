// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Fuzzing;

/// <summary>The calls the fuzzer makes. Each names its logical handles by number so a sequence replays anywhere.</summary>
public enum OpKind
{
    /// <summary>open("/dev/kvm") → system handle <c>Result</c>.</summary>
    OpenKvm,
    /// <summary>KVM_CREATE_VM(type = A) on system handle <c>Target</c> → VM handle.</summary>
    CreateVm,
    /// <summary>KVM_CHECK_EXTENSION(cap = A) on handle <c>Target</c>.</summary>
    CheckExtension,
    /// <summary>KVM_CREATE_GUEST_MEMFD(size = A, flags = B) on VM <c>Target</c> → gmem handle.</summary>
    CreateGmem,
    /// <summary>fallocate(gmem <c>Target</c>, mode = E, offset = A, len = B).</summary>
    Fallocate,
    /// <summary>KVM_SET_USER_MEMORY_REGION2 on VM <c>Target</c>: slot = E, flags = (uint)D, gpa = A, size = B, gmem = <c>Other</c>, offset = C.</summary>
    SetRegion2,
    /// <summary>mmap(gmem <c>Target</c>, length = A, offset = B, MAP_SHARED if E == 0 else MAP_PRIVATE) → mapping handle.</summary>
    Mmap,
    /// <summary>Host access to mapping <c>Target</c> at byte A: write byte (B &amp; 0xff) if C != 0, else read.</summary>
    Touch,
    /// <summary>munmap(mapping <c>Target</c>).</summary>
    Munmap,
    /// <summary>close(handle <c>Target</c>).</summary>
    Close,
    /// <summary>fstat(handle <c>Target</c>).</summary>
    Fstat,
    /// <summary>read/write/pread/pwrite/lseek/ftruncate (E = 0..5) on handle <c>Target</c>, length/offset A.</summary>
    FileIo,
    /// <summary>KVM_SET_MEMORY_ATTRIBUTES on VM <c>Target</c>: address A, size B, attributes C, flags D.</summary>
    SetAttributes,
    /// <summary>KVM_SET_MEMORY_ATTRIBUTES2 on gmem <c>Target</c>: offset A, size B, attributes C, flags D.</summary>
    SetAttributes2,
}

/// <summary>One call of a sequence. <see cref="Result"/> is the logical handle a creating call defines.</summary>
public sealed record FuzzOp(OpKind Kind, int Target = -1, int Other = -1, ulong A = 0, ulong B = 0, ulong C = 0, ulong D = 0, int E = 0, int Result = -1)
{
    public override string ToString()
    {
        var ci = CultureInfo.InvariantCulture;
        string h(int id) => id < 0 ? "-" : "h" + id.ToString(ci);
        return Kind switch
        {
            OpKind.OpenKvm => $"{h(Result)} = open(/dev/kvm)",
            OpKind.CreateVm => $"{h(Result)} = KVM_CREATE_VM({h(Target)}, type={A})",
            OpKind.CheckExtension => $"KVM_CHECK_EXTENSION({h(Target)}, cap={A})",
            OpKind.CreateGmem => $"{h(Result)} = KVM_CREATE_GUEST_MEMFD({h(Target)}, size=0x{A:X}, flags=0x{B:X})",
            OpKind.Fallocate => $"fallocate({h(Target)}, mode=0x{E:X}, offset=0x{A:X}, len=0x{B:X})",
            OpKind.SetRegion2 => $"KVM_SET_USER_MEMORY_REGION2({h(Target)}, slot={E}, flags=0x{D:X}, gpa=0x{A:X}, size=0x{B:X}, gmem={h(Other)}, offset=0x{C:X})",
            OpKind.Mmap => $"{h(Result)} = mmap({h(Target)}, len=0x{A:X}, offset=0x{B:X}, {(E == 0 ? "MAP_SHARED" : "MAP_PRIVATE")})",
            OpKind.Touch => C != 0 ? $"{h(Target)}[0x{A:X}] = 0x{B & 0xff:X2}" : $"read {h(Target)}[0x{A:X}]",
            OpKind.Munmap => $"munmap({h(Target)})",
            OpKind.Close => $"close({h(Target)})",
            OpKind.Fstat => $"fstat({h(Target)})",
            OpKind.FileIo => $"{FileIoNames[E]}({h(Target)}, 0x{A:X})",
            OpKind.SetAttributes => $"KVM_SET_MEMORY_ATTRIBUTES({h(Target)}, addr=0x{A:X}, size=0x{B:X}, attrs=0x{C:X}, flags=0x{D:X})",
            OpKind.SetAttributes2 => $"KVM_SET_MEMORY_ATTRIBUTES2({h(Target)}, offset=0x{A:X}, size=0x{B:X}, attrs=0x{C:X}, flags=0x{D:X})",
            _ => Kind.ToString(),
        };
    }

    internal static readonly string[] FileIoNames = ["read", "write", "pread", "pwrite", "lseek", "ftruncate"];
}
