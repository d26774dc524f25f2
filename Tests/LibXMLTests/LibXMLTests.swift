import Foundation
import LibXML
import TestFixtures
import Testing

@Suite("LibXML: the safe libxml2 wrapper")
struct LibXMLTests {
    @Test func readsElementsAttributesAndText() throws {
        let document = try XMLDocument.parse(string: """
            <!-- banner -->
            <domain type='kvm'>
              <name>demo</name>
              <devices>
                <disk type='file' device='disk'>
                  <source file='/a/it&apos;s &amp; &lt;x&gt; &#x2F;&#233;.img'/>
                </disk>
              </devices>
            </domain>
            """, url: "inline.xml")
        let root = document.root
        #expect(root.name == "domain")
        #expect(root.attribute("type") == "kvm")
        #expect(root.attribute("missing") == nil)
        #expect(root.firstChild(named: "name")?.text == "demo")
        #expect(root.line == 2)
        let source = try #require(document.select("/domain/devices/disk/source").first)
        #expect(source.attribute("file") == "/a/it's & <x> /\u{E9}.img")
        #expect(source.line == 6)
        #expect(root.elementChildren.map(\.name) == ["name", "devices"])
    }

    @Test func anchoredXPathDoesNotReachNestedElements() throws {
        let document = try XMLDocument.parse(string: """
            <domain><devices>
              <disk><source file='/top'/><backingStore><source file='/base'/></backingStore></disk>
            </devices></domain>
            """, url: "nested.xml")
        #expect(try document.select("/domain/devices/disk/source").map { $0.attribute("file") } == ["/top"])
        #expect(try document.select("//source").count == 2)
        #expect(try document.select("/domstatus/domain/devices/disk").isEmpty)
    }

    @Test func badXPathIsATypedError() throws {
        let document = try XMLDocument.parse(string: "<a/>", url: "a.xml")
        #expect {
            try document.select("/a[")
        } throws: { error in
            guard let error = error as? XMLError else { return false }
            return error.kind == .xpath && error.file == "a.xml" && error.message.contains("/a[")
        }
    }

    @Test func malformedDocumentReportsFileLineAndLibxml2Message() throws {
        let xml = "<domain>\n  <name>demo</name>\n  <devices>\n    <disk></source>\n  </devices>\n</domain>\n"
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(string: xml, url: "/run/libvirt/qemu/demo.xml")
        }
        #expect(error.kind == .malformed)
        #expect(error.file == "/run/libvirt/qemu/demo.xml")
        #expect(error.line == 4)
        #expect(error.message.contains("mismatch"))
        #expect(error.libxml2Code == 76) // XML_ERR_TAG_NAME_MISMATCH
        #expect(error.description.hasPrefix("/run/libvirt/qemu/demo.xml:4"))
    }

    @Test func truncatedFixtureIsRejectedAtItsEnd() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(file: GuestFixtureFiles.path("status-truncated.xml"))
        }
        #expect(error.kind == .malformed)
        #expect(error.file == GuestFixtureFiles.path("status-truncated.xml"))
        let lineCount = try String(contentsOfFile: GuestFixtureFiles.path("status-truncated.xml"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).count
        #expect(error.line == lineCount)
    }

    @Test(arguments: ["", "   ", "<", "<a>", "<a></b>", "text only", "<a/><b/>"])
    func garbageIsRejected(_ xml: String) {
        #expect(throws: XMLError.self) { try XMLDocument.parse(string: xml, url: "garbage.xml") }
    }

    @Test func invalidUTF8IsRejected() {
        let bytes = Array("<a b='".utf8) + [0xFF, 0xFE] + Array("'/>".utf8)
        #expect(throws: XMLError.self) { try XMLDocument.parse(bytes: bytes, url: "latin.xml") }
    }

    // MARK: Entities, DTDs, network

    @Test func externalEntityIsNeverLoaded() throws {
        let passwd = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? "root:"
        let firstLine = String(passwd.prefix(while: { $0 != "\n" }))
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(file: GuestFixtureFiles.path("status-xxe.xml"))
        }
        #expect(error.kind == .doctypeForbidden)
        #expect(error.line == 7)
        #expect(!error.message.contains(firstLine))
        #expect(!error.description.contains("root:"))
    }

    @Test(arguments: [
        "<!DOCTYPE a SYSTEM 'http://192.0.2.1/evil.dtd'><a/>",
        "<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a>&x;</a>",
        "<!DOCTYPE a PUBLIC '-//x//y' 'z.dtd'><a/>",
        "<!DOCTYPE a [<!ENTITY x 'y'>]><a b='&x;'/>",
        "<!DOCTYPE a><a/>",
    ])
    func everyDoctypeIsRefused(_ xml: String) throws {
        let error = try #require(throws: XMLError.self) { try XMLDocument.parse(string: xml, url: "dtd.xml") }
        #expect(error.kind == .doctypeForbidden)
        #expect(error.file == "dtd.xml")
        #expect(error.line == 1)
    }

    @Test func undeclaredEntityIsAnErrorNotAnExpansion() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(string: "<a>\n<b c='&secret;'/></a>", url: "entity.xml")
        }
        #expect(error.kind == .malformed)
        #expect(error.line == 2)
        #expect(error.message.contains("secret"))
    }

    /// Refused for its DOCTYPE, before any entity is declared, let alone
    /// expanded (an expansion would run into the time limit, the test's
    /// hang guard).
    @Test(.timeLimit(.minutes(1)))
    func billionLaughsIsRefusedBeforeExpansion() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(file: GuestFixtureFiles.path("status-billion-laughs.xml"))
        }
        #expect(error.kind == .doctypeForbidden)
    }

    // MARK: Limits

    @Test func documentOverTheByteLimitIsRefused() {
        let xml = "<a>" + String(repeating: "x", count: 2000) + "</a>"
        #expect {
            try XMLDocument.parse(string: xml, url: "big.xml", limits: XMLParseLimits(maxBytes: 1000))
        } throws: { ($0 as? XMLError)?.kind == .tooLarge(limit: 1000) }
    }

    /// A 1 GiB sparse file: refused from its size as fstat gives it (the
    /// message carries that size), not after reading it.
    @Test(.timeLimit(.minutes(1)))
    func hugeFileIsRefusedBeforeReading() throws {
        let directory = try GuestTemporaryDirectory()
        let path = try directory.write("huge.xml", "<a>")
        #expect(truncate(path, 1 << 30) == 0)
        let error = try #require(throws: XMLError.self) { try XMLDocument.parse(file: path) }
        #expect(error.kind == .tooLarge(limit: XMLParseLimits.default.maxBytes))
        #expect(error.file == path)
        #expect(error.message.hasPrefix("\(1 << 30) bytes is over"), "\(error.message)")
    }

    @Test func nestingDeeperThanTheLimitIsRefused() throws {
        let deep = String(repeating: "<d>", count: 20) + String(repeating: "</d>", count: 20)
        #expect(try XMLDocument.parse(string: deep, url: "ok.xml", limits: XMLParseLimits(maxDepth: 20)).root.name == "d")
        let error = try #require(throws: XMLError.self) {
            try XMLDocument.parse(string: deep, url: "deep.xml", limits: XMLParseLimits(maxDepth: 19))
        }
        #expect(error.kind == .tooDeep(limit: 19))
    }

    @Test func libxml2sOwnDepthLimitStillHolds() {
        let deep = String(repeating: "<d>", count: 5000) + String(repeating: "</d>", count: 5000)
        #expect(throws: XMLError.self) {
            try XMLDocument.parse(string: deep, url: "deep.xml", limits: XMLParseLimits(maxDepth: 100_000))
        }
    }

    @Test func hundredsOfCapabilityFlagsParse() throws {
        let document = try XMLDocument.parse(file: GuestFixtureFiles.path("status-demo-paused.xml"))
        #expect(try document.select("/domstatus/qemuCaps/flag").count == 300)
    }

    // MARK: Files

    @Test func missingFileIsAnIOError() {
        #expect {
            try XMLDocument.parse(file: "/nonexistent/guest.xml")
        } throws: { ($0 as? XMLError)?.kind == .io(errno: ENOENT) && ($0 as? XMLError)?.file == "/nonexistent/guest.xml" }
    }

    @Test func directoryIsNotARegularFile() throws {
        let directory = try GuestTemporaryDirectory()
        let path = try directory.makeDirectory("dir.xml")
        #expect { try XMLDocument.parse(file: path) } throws: { ($0 as? XMLError)?.kind == .notRegularFile }
    }

    @Test(.timeLimit(.minutes(1)))
    func fifoIsRefusedWithoutBlocking() throws {
        let directory = try GuestTemporaryDirectory()
        let path = directory.path + "/fifo.xml"
        #expect(mkfifo(path, 0o600) == 0)
        #expect { try XMLDocument.parse(file: path) } throws: { ($0 as? XMLError)?.kind == .notRegularFile }
    }

    // MARK: Diagnostics stay out of stderr and out of other parses

    /// libxml2's default handlers print to stderr; ours must not. Swapping
    /// fd 2 is process-wide, so only libxml2's own wording is looked for.
    @Test func parseErrorsAreNotPrintedToStderr() throws {
        let directory = try GuestTemporaryDirectory()
        let capture = directory.path + "/stderr.txt"
        let captureFD = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(captureFD >= 0)
        fflush(nil)
        let saved = dup(2)
        dup2(captureFD, 2)
        var thrown: [XMLError] = []
        for xml in ["<a></b>", "<a b='&nope;'/>", "<a>\u{1}</a>", "<!DOCTYPE a [<!ENTITY x 'y'>]><a/>"] {
            do { _ = try XMLDocument.parse(string: xml, url: "noisy.xml") } catch { thrown.append(error) }
        }
        let document = try XMLDocument.parse(string: "<a/>", url: "noisy.xml")
        do { _ = try document.select("/a[") } catch { thrown.append(error) }
        fflush(nil)
        dup2(saved, 2)
        close(saved)
        close(captureFD)
        let printed = try String(contentsOfFile: capture, encoding: .utf8)
        #expect(thrown.count == 5)
        #expect(!printed.contains("noisy.xml"))
        #expect(!printed.contains("XPath"))
        #expect(!printed.contains("parser error"))
        #expect(!printed.contains("mismatch"))
    }

    /// Every error belongs to the parse that raised it, even with many
    /// parses at once on several threads (no shared "last error").
    @Test func concurrentParsesKeepTheirOwnErrors() async throws {
        let results = await withTaskGroup(of: (Int, XMLError?).self) { group in
            for index in 0..<64 {
                group.addTask {
                    let lines = String(repeating: "\n", count: index)
                    let xml = index.isMultiple(of: 2) ? "<a>\(lines)<b></c></a>" : "<a>\(lines)<b/></a>"
                    do throws(XMLError) {
                        _ = try XMLDocument.parse(string: xml, url: "file-\(index).xml")
                        return (index, nil)
                    } catch {
                        return (index, error)
                    }
                }
            }
            var all: [(Int, XMLError?)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 64)
        for (index, error) in results {
            if index.isMultiple(of: 2) {
                #expect(error?.file == "file-\(index).xml")
                #expect(error?.line == index + 1)
            } else {
                #expect(error == nil)
            }
        }
    }

    @Test func documentOutlivesTheNodesTakenFromIt() throws {
        var nodes: [XMLNode] = []
        do {
            let document = try XMLDocument.parse(string: "<a><b x='1'/><b x='2'/></a>", url: "a.xml")
            nodes = try document.select("/a/b")
        }
        #expect(nodes.map { $0.attribute("x") } == ["1", "2"])
    }
}
