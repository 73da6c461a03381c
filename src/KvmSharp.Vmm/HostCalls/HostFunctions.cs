// SPDX-License-Identifier: MIT
using System.Collections;
using System.Text;

namespace KvmSharp.Vmm.HostCalls;

/// <summary>A function the guest can call: the guest's arguments and checked guest memory in, the result out.</summary>
public delegate ulong HostFunction(HostCallContext context);

/// <summary>One entry of a <see cref="HostFunctions"/> registry.</summary>
public readonly record struct RegisteredHostFunction(uint Id, string Name, HostFunction Function);

/// <summary>
/// The functions a guest may call, by name and by a host-fixed id. The guest calls by id (a number it writes to the
/// host-call block, no string handling on the hot path); the host fixes the ids, like a syscall table, either
/// explicitly (<see cref="Add(uint, string, HostFunction)"/>: ids a guest can be compiled against) or as the next
/// free one. A guest that knows only names looks ids up once with the built-in id 0, resolve(name_ptr, name_len)
/// (GUEST-ABI.md, "Host calls"). Give it to <see cref="MicroVmOptions.HostFunctions"/> (each micro-VM takes a copy at
/// creation) or add to <see cref="MicroVm.HostFunctions"/> of one micro-VM. Not thread-safe: register before calls.
/// </summary>
public sealed class HostFunctions : IEnumerable<RegisteredHostFunction>
{
    /// <summary>The reserved id of the built-in resolve(name_ptr, name_len) → id.</summary>
    public const uint ResolveId = 0;

    /// <summary>Longest name in UTF-8 bytes (also the most resolve reads from the guest).</summary>
    public const int MaxNameLength = 64;

    private readonly Dictionary<uint, RegisteredHostFunction> _byId = [];
    private readonly Dictionary<string, uint> _idByName = new(StringComparer.Ordinal);

    /// <summary>An empty registry; the built-in resolve (id 0) needs no entry.</summary>
    public HostFunctions()
    {
    }

    /// <summary>A copy of <paramref name="other"/>'s entries (the delegates are shared).</summary>
    public HostFunctions(HostFunctions other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var f in other) Add(f.Id, f.Name, f.Function);
    }

    /// <summary>The number of registered functions (resolve not counted).</summary>
    public int Count => _byId.Count;

    /// <summary>Registers <paramref name="function"/> under the next free id (one above the highest so far) and returns it.</summary>
    public uint Add(string name, HostFunction function)
    {
        uint id = _byId.Count == 0 ? 1 : _byId.Keys.Max() + 1;
        if (id == ResolveId) throw new MicroVmException("no host function id is left");
        Add(id, name, function);
        return id;
    }

    /// <summary>Registers <paramref name="function"/> under a fixed <paramref name="id"/> (not 0, which is resolve).</summary>
    public void Add(uint id, string name, HostFunction function)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(function);
        if (id == ResolveId) throw new MicroVmException($"host function id {ResolveId} is reserved for resolve(name_ptr, name_len)");
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes == 0 || bytes > MaxNameLength)
            throw new MicroVmException($"host function name '{name}' must be 1 to {MaxNameLength} UTF-8 bytes, not {bytes}");
        if (_byId.TryGetValue(id, out var taken))
            throw new MicroVmException($"host function id {id} is already '{taken.Name}'");
        if (_idByName.TryGetValue(name, out uint other))
            throw new MicroVmException($"a host function named '{name}' is already registered (id {other})");
        _byId.Add(id, new RegisteredHostFunction(id, name, function));
        _idByName.Add(name, id);
    }

    /// <summary>f() → result; the guest's arguments are ignored.</summary>
    public uint Add(string name, Func<ulong> function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return Add(name, (HostCallContext _) => function());
    }

    /// <summary>f(arg0, arg1) → result. (No one-argument form: <c>c =&gt; …</c> would be ambiguous with <see cref="HostFunction"/>;
    /// write <c>c =&gt; f(c.Args[0])</c>.)</summary>
    public uint Add(string name, Func<ulong, ulong, ulong> function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return Add(name, (HostCallContext c) => function(c.Args[0], c.Args[1]));
    }

    /// <summary>The id of <paramref name="name"/>; throws when it is not registered.</summary>
    public uint IdOf(string name) =>
        TryGetId(name, out uint id) ? id : throw new MicroVmException($"no host function named '{name}'; registered: {string.Join(", ", _idByName.Keys)}");

    /// <summary>Looks up the id of <paramref name="name"/> (exact, case-sensitive).</summary>
    public bool TryGetId(string name, out uint id) => _idByName.TryGetValue(name, out id);

    /// <summary>Looks up the function registered under <paramref name="id"/>.</summary>
    public bool TryGet(uint id, out RegisteredHostFunction function) => _byId.TryGetValue(id, out function);

    /// <summary>The registered functions in ascending id order.</summary>
    public IEnumerator<RegisteredHostFunction> GetEnumerator() => _byId.Values.OrderBy(f => f.Id).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
