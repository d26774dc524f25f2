import Glibc
import SystemCalls
import SystemPackage
import Testing

/// The funnel's test hook: a chosen call fails in-process, as it would under
/// `strace -e inject=`, and only on the task that asked for it.
@Suite("System calls: injected faults")
struct InjectedFaultTests {
    /// A scratch file with `bytes`, opened read-only; removed at the end.
    func withScratchFile<Value>(_ bytes: [UInt8], _ body: (FileDescriptor, String) throws -> Value) throws -> Value {
        var template = Array("/tmp/vsc-funnel.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        try #require(written == bytes.count)
        close(fd)
        let descriptor = try FileDescriptor.open(path: Array(path.utf8), .readOnly, options: [])
        defer { descriptor.closeIgnoringErrors() }
        return try body(descriptor, path)
    }

    @Test("A failed call is not made, and its error names the call and the errno")
    func failedCallIsNotMade() throws {
        try withScratchFile([1, 2, 3]) { _, path in
            let directory = try FileDescriptor.open(path: Array("/tmp".utf8), .readOnly, options: [.directory])
            defer { directory.closeIgnoringErrors() }
            let name = Array(path.dropFirst("/tmp/".count).utf8)
            let faults = InjectedFaults([.init("unlinkat", .ioError)])
            let error = #expect(throws: SystemCallError.self) {
                try faults.during { () throws(SystemCallError) in try directory.unlink(entry: name) }
            }
            #expect(error == SystemCallError("unlinkat", errno: .ioError))
            #expect(faults.injected == ["unlinkat"])
            // Not made: the file is still there.
            #expect(access(path, F_OK) == 0)
        }
    }

    @Test("The byte loops retry an interrupted pread; a single call reports EINTR")
    func interruptedRead() throws {
        try withScratchFile(Array(repeating: 7, count: 4096)) { descriptor, _ in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            let retried = InjectedFaults([.init("pread", .interrupted, occurrence: 1)])
            var count = 0
            try retried.during { () throws(SystemCallError) in try descriptor.readFromStart(into: buffer, atLeast: 4096, count: &count) }
            #expect(count == 4096 && buffer.allSatisfy { $0 == 7 })
            #expect(retried.injected == ["pread"])

            let reported = InjectedFaults([.init("pread", .interrupted, occurrence: 1)])
            let error = #expect(throws: SystemCallError.self) {
                _ = try reported.during { () throws(SystemCallError) in try descriptor.read(at: 0, into: buffer) }
            }
            #expect(error?.errno == .interrupted)
        }
    }

    @Test("Only the chosen occurrence fails; other tasks and later calls are untouched")
    func chosenOccurrenceOnly() async throws {
        let faults = InjectedFaults([.init("fstat", .badFileDescriptor, occurrence: 2)])
        try withScratchFile([0]) { descriptor, _ in
            let results = faults.during { () -> [Bool] in
                (1...3).map { _ in (try? descriptor.status()) != nil }
            }
            #expect(results == [true, false, true])
            #expect(faults.injected == ["fstat"])
        }
        // A task that did not ask sees no fault, even while another does.
        let every = InjectedFaults([.init("getcwd", .noMemory, occurrence: nil)])
        let other = Task.detached { (try? Syscall.currentDirectory()) != nil }
        let mine = every.during { (try? Syscall.currentDirectory()) != nil }
        #expect(await other.value == true)
        #expect(mine == false)
    }
}
