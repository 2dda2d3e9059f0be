<?xml version="1.0" encoding="UTF-8"?>
<!-- MARC → DC for a site that publishes MARC21 from Alma: title, creators, subjects (650 and
     653), summaries, and the 035 that names the IE. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:marc="http://www.loc.gov/MARC21/slim"
    xmlns:dc="http://purl.org/dc/elements/1.1/">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template match="/marc:record">
    <dc:record>
      <xsl:for-each select="marc:datafield[@tag='245']/marc:subfield[@code='a']">
        <dc:title><xsl:value-of select="."/></dc:title>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='100' or @tag='700']/marc:subfield[@code='a']">
        <dc:creator><xsl:value-of select="."/></dc:creator>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='650' or @tag='653']/marc:subfield[@code='a']">
        <dc:subject><xsl:value-of select="."/></dc:subject>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='520']/marc:subfield[@code='a']">
        <dc:description><xsl:value-of select="."/></dc:description>
      </xsl:for-each>
      <xsl:for-each select="marc:datafield[@tag='035']/marc:subfield[@code='a']">
        <dc:identifier><xsl:value-of select="."/></dc:identifier>
      </xsl:for-each>
    </dc:record>
  </xsl:template>
</xsl:stylesheet>
