<?xml version="1.0" encoding="UTF-8"?>
<!-- A site's harvest transformation: Alma's dc:rights never reaches Rosetta, and the DCMI type
     "Image" is mapped to "StillImage". -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"
    xmlns:dc="http://purl.org/dc/elements/1.1/">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template match="/oai_dc:dc">
    <dc:record>
      <xsl:apply-templates select="dc:*"/>
    </dc:record>
  </xsl:template>
  <xsl:template match="dc:rights"/>
  <xsl:template match="dc:type[. = 'Image']">
    <dc:type>StillImage</dc:type>
  </xsl:template>
  <xsl:template match="dc:*">
    <xsl:copy-of select="."/>
  </xsl:template>
</xsl:stylesheet>
