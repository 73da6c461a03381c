// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation;

/// <summary>Why a host access to an emulated guest_memfd mapping would get SIGBUS (kvm_gmem_fault_user_mapping).</summary>
public enum HostAccessFault
{
    /// <summary>The address is not inside an emulated file mapping (the real kernel would SIGSEGV).</summary>
    NotMapped,

    /// <summary>pgoff &lt;&lt; PAGE_SHIFT &gt;= i_size.</summary>
    BeyondEndOfFile,

    /// <summary>The page is private: no INIT_SHARED (6.18), or its attribute is PRIVATE (v8).</summary>
    PrivatePage,

    /// <summary>The file's memory is gone (should not happen while a mapping holds it).</summary>
    Released,
}
