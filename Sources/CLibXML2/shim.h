/* The one C seam to libxml2: only the parser, tree and XPath APIs (SAX2.h for
   the default handlers that the LibXML wrapper chains to). */
#ifndef VSC_CLIBXML2_SHIM_H
#define VSC_CLIBXML2_SHIM_H

#include <libxml/xmlversion.h>
/* Debian builds libxml2 with ICU, and encoding.h then includes the system's
   <unicode/ucnv.h>, whose types clash with Foundation's bundled ICU in any
   Swift module that sees both ("'UErrorCode' has different definitions").
   Nothing here touches libxml2's ICU converter fields (xmlCharEncodingHandler
   is only ever reached through pointers, never allocated or read by us), so
   the ICU declarations are left out. */
#undef LIBXML_ICU_ENABLED

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xmlerror.h>

#endif
