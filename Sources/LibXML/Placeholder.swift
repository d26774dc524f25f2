import CLibXML2

/// Placeholder until the guest inventory lands (issue 3).
enum LibXMLPlaceholder {}
