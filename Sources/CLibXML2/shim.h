/* The one C seam to libxml2: only the parser, tree and XPath APIs. */
#ifndef VSC_CLIBXML2_SHIM_H
#define VSC_CLIBXML2_SHIM_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xmlerror.h>

#endif
