"""difflens.data"""
