internal import CLibXML2

/// A read-only view of one element. Holds its document, so the tree it
/// points into stays alive as long as the view does.
public struct XMLNode {
    public let document: XMLDocument
    let pointer: xmlNodePtr

    init(document: XMLDocument, pointer: xmlNodePtr) {
        self.document = document
        self.pointer = pointer
    }

    /// The element's local name (libvirt's XML uses no namespaces).
    public var name: String { String(cString: pointer.pointee.name) }

    /// The line the element starts on.
    public var line: Int { Int(xmlGetLineNo(pointer)) }

    /// The value of an attribute without a namespace, character references
    /// resolved, exactly as libvirt's `virXMLPropString` would read it.
    public func attribute(_ name: String) -> String? {
        // Without a DTD (refused at parse time) this finds only real
        // attributes, never declared defaults; the type check keeps it so.
        guard let attribute = xmlHasNsProp(pointer, name, nil), attribute.pointee.type == XML_ATTRIBUTE_NODE else {
            return nil
        }
        // An attribute's value is its child text nodes; with no DTD there are
        // no entity reference nodes, so one text node is the common case.
        var value = ""
        var child = attribute.pointee.children
        while let node = child {
            if node.pointee.type == XML_TEXT_NODE, let content = node.pointee.content {
                value += String(cString: content)
            }
            child = node.pointee.next
        }
        return value
    }

    /// Whether the element has a child element of this name (`<readonly/>`).
    public func hasChild(named name: String) -> Bool { firstChild(named: name) != nil }

    /// The first child element of this name, as libvirt's `./name` XPath
    /// lookups pick it.
    public func firstChild(named name: String) -> XMLNode? {
        var child = pointer.pointee.children
        while let node = child {
            if node.pointee.type == XML_ELEMENT_NODE, xmlStrEqual(node.pointee.name, name) != 0 {
                return XMLNode(document: document, pointer: node)
            }
            child = node.pointee.next
        }
        return nil
    }

    /// Every child element of this name, in document order.
    public func children(named name: String) -> [XMLNode] {
        elementChildren.filter { xmlStrEqual($0.pointer.pointee.name, name) != 0 }
    }

    /// Every child element, in document order (text and comments skipped).
    public var elementChildren: [XMLNode] {
        var result: [XMLNode] = []
        var child = pointer.pointee.children
        while let node = child {
            if node.pointee.type == XML_ELEMENT_NODE { result.append(XMLNode(document: document, pointer: node)) }
            child = node.pointee.next
        }
        return result
    }

    /// The concatenated text of the element's direct text children
    /// (`<name>demo</name>` → `demo`).
    public var text: String {
        var value = ""
        var child = pointer.pointee.children
        while let node = child {
            if node.pointee.type == XML_TEXT_NODE || node.pointee.type == XML_CDATA_SECTION_NODE,
               let content = node.pointee.content {
                value += String(cString: content)
            }
            child = node.pointee.next
        }
        return value
    }
}
